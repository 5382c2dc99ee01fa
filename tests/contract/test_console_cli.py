"""`followup users add|list|grant` and `followup report monthly --excel` (SQLite)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from sqlalchemy import select

from console.periods import last_finished_month
from core.audit import AuditLog
from core.clock import FakeClock
from core.store.db import Database
from core.store.models import AuditEntry, User, UserGrant
from engine.cli import cli
from recordings.store import RecordingStore
from tests.unit.console.seed import seed


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    monkeypatch.setenv("FOLLOWUP_DATABASE__URL", url)
    monkeypatch.delenv("FOLLOWUP_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    db = Database(url)
    db.migrate()
    # The CLI runs on the wall clock: seed 'today' as the real today.
    clock = FakeClock(dt.datetime.now(dt.UTC).replace(hour=3, minute=0))
    seed(db, clock, RecordingStore(tmp_path / "rec", clock, AuditLog(clock)))
    return db


def test_users_add_list_grant(store: Database, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["--data-dir", str(tmp_path)]
    out = runner.invoke(cli, [*args, "users", "add", "zhang.wei", "--role", "supervisor",
                              "--name", "张伟", "--department", "ONC",
                              "--password", "a-long-password"])
    assert out.exit_code == 0, out.output
    bad = runner.invoke(cli, [*args, "users", "add", "Bad Name", "--role", "agent",
                              "--name", "x", "--password", "a-long-password"])
    assert bad.exit_code != 0 and "username" in bad.output
    nodept = runner.invoke(cli, [*args, "users", "add", "mgr2", "--role", "dept_manager",
                                 "--name", "x", "--password", "a-long-password"])
    assert nodept.exit_code != 0 and "department_id" in nodept.output
    refused = runner.invoke(cli, [*args, "users", "grant", "zhang.wei", "--role", "agent",
                                  "--department", "CARD", "--by", "admin"])
    assert refused.exit_code != 0 and "not a system administrator" in refused.output
    granted = runner.invoke(cli, [*args, "users", "grant", "zhang.wei", "--role", "agent",
                                  "--department", "CARD", "--days", "3", "--by", "sys"])
    assert granted.exit_code == 0, granted.output
    listing = runner.invoke(cli, [*args, "users", "list"])
    line = next(ln for ln in listing.output.splitlines() if ln.startswith("zhang.wei"))
    assert "supervisor" in line and "ONC" in line and "agent@CARD" in line
    with store.session() as s:
        user = s.execute(select(User).where(User.username == "zhang.wei")).scalar_one()
        assert user.password_hash.startswith("$argon2")
        assert s.execute(select(UserGrant).where(UserGrant.user_id == user.id)).scalar_one()
        actions = {e.action for e in s.execute(select(AuditEntry)).scalars()}
    assert {"user.create", "user.grant"} <= actions


def test_report_monthly_prints_and_writes_excel(store: Database, tmp_path: Path) -> None:
    xlsx = tmp_path / "card.xlsx"
    out = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "report", "monthly",
                                   "--department", "CARD", "--excel", str(xlsx)])
    assert out.exit_code == 0, out.output
    # no --month: the last finished month (the seed's month before this one: 6 due, 5 done)
    last = last_finished_month(dt.datetime.now(dt.UTC), "Asia/Shanghai")
    assert f"{last:%Y-%m}: eligible 6, responded 5" in out.output
    assert "inpatient-satisfaction/food" in out.output and "suppressed" in out.output
    assert "yes 60.0% [" in out.output  # recommend: 3 of 5 said yes
    wb = load_workbook(xlsx)
    assert wb["Summary"]["B3"].value == 6
    this = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "report", "monthly",
                                    "--department", "CARD", "--month",
                                    dt.datetime.now(dt.UTC).strftime("%Y-%m")])
    assert "eligible 7, responded 6" in this.output
    bad = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "report", "monthly",
                                   "--department", "NOPE"])
    assert bad.exit_code != 0 and "NOPE" in bad.output


def test_report_snapshots_keep_finished_months(store: Database, tmp_path: Path) -> None:
    from core.store.models import ReportSnapshot

    out = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "report", "snapshots",
                                   "--months", "3"])
    assert out.exit_code == 0, out.output
    with store.session() as s:
        rows = s.execute(select(ReportSnapshot)).scalars().all()
    # two departments x the three months before this one (the newest of them is not yet
    # "finished" during the first day of a month)
    assert len(rows) in (4, 6) and len({r.month for r in rows}) == len(rows) // 2
    this_month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    assert all(r.month < this_month for r in rows)
    assert {r.data["figures"]["eligible"] for r in rows if r.department_id == 1} >= {6}
