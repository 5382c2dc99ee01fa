"""`followup plan` and `followup tasks` from the command line (SQLite, the real scripts)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import insert

from core.store.db import Database
from core.store.models import Department, Encounter, Patient
from engine.cli import cli


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    monkeypatch.setenv("FOLLOWUP_DATABASE__URL", url)
    monkeypatch.delenv("FOLLOWUP_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    db = Database(url)
    db.migrate()
    # The CLI runs on the wall clock: the visit was yesterday, whatever day the test runs.
    now = dt.datetime.now(dt.UTC)
    with db.engine.begin() as conn:
        conn.execute(insert(Department), [{"id": 1, "code": "CARD", "name": "心内科",
                                           "name_en": "Cardiology", "retention_days": None}])
        conn.execute(insert(Patient), [{
            "id": 1, "his_id": "H100234", "mrn": "100234", "name": "张三", "sex": "male",
            "birth_date": dt.date(1950, 1, 1), "phone": "+8613800138000", "phone_alt": None,
            "language": "zh-CN", "timezone": "Asia/Shanghai", "deceased": False,
            "opt_out_phone": False, "opt_out_sms": False, "consent_phone": True,
            "consent_sms": False, "content_hash": "x", "plan_dirty": True, "updated_at": now}])
        conn.execute(insert(Encounter), [{
            "id": 1, "his_id": "E1", "patient_id": 1, "type": "inpatient", "department_id": 1,
            "attending_doctor": None, "admit_at": now - dt.timedelta(days=6),
            "discharge_at": now - dt.timedelta(hours=2), "diagnoses": ["I21.0"],
            "procedures": [], "disposition": "home", "content_hash": "y", "plan_dirty": True,
            "updated_at": now}])
    db.dispose()
    return db


def test_plan_then_tasks_then_explain(store: Database, tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(cli, ["--data-dir", str(tmp_path), "plan"])
    assert out.exit_code == 0, out.output
    assert "encounters examined: 1" in out.output
    assert "calls created:       4" in out.output

    again = runner.invoke(cli, ["--data-dir", str(tmp_path), "plan"])
    assert "calls created:       0" in again.output

    listing = runner.invoke(cli, ["--data-dir", str(tmp_path), "tasks", "--department", "CARD",
                                  "--status", "pending"])
    assert listing.exit_code == 0, listing.output
    lines = listing.output.splitlines()
    assert lines[0].split() == ["#", "patient", "dept", "rule", "due", "hours", "scripts",
                                "state", "note"]
    assert sum("cardiology-post-discharge" in line for line in lines) == 3
    assert lines[-1] == "4 calls"
    limited = runner.invoke(cli, ["--data-dir", str(tmp_path), "tasks", "--limit", "1"])
    assert limited.output.splitlines()[-1] == "1 of 4 calls shown"

    explained = runner.invoke(cli, ["--data-dir", str(tmp_path), "plan", "--explain", "100234"])
    assert explained.exit_code == 0, explained.output
    assert "rule cardiology-post-discharge: MATCHED" in explained.output
    assert "rule oncology-post-discharge: no - department CARD not in [ONC]" in explained.output


def test_help_is_written_for_administrators() -> None:
    out = CliRunner().invoke(cli, ["plan", "--help"])
    assert out.exit_code == 0
    assert "--explain PATIENT" in out.output and "--all" in out.output
    assert "Calls already made are never changed" in out.output
    tasks_help = CliRunner().invoke(cli, ["tasks", "--help"])
    assert "--due-from YYYY-MM-DD" in tasks_help.output
