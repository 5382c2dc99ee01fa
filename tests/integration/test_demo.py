"""`followup demo` runs to the end on a fresh data folder (the README's first command runs
it after installing): HIS synthesised and synced, calls planned and made through the real
IVR, answers, recordings (intact) and tickets stored."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from sqlalchemy import func, select, text

from core.audit import AuditLog
from core.clock import SystemClock
from core.store.db import Database
from core.store.models import Answer, CallAttempt, Recording, Ticket
from recordings.store import RecordingStore
from tests.audit_key import TEST_AUDIT_KEY

REPO = Path(__file__).resolve().parents[2]
SHANGHAI = ZoneInfo("Asia/Shanghai")

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None,
                                reason="the demo speaks its prompts: needs espeak-ng and sox")


def test_demo_runs_to_the_end(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    out = subprocess.run(
        [sys.executable, "-c", "from engine.cli import main; main()", "--data-dir",
         str(data_dir), "demo", "--patients", "300", "--days", "14", "--speed", "600",
         "--today", "2026-11-26", "--no-console"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for step in ("synthetic HIS", "HIS sync", "planned", "calling", "done", "SMS (sim gateway"):
        assert step in out.stdout
    db = Database(f"sqlite:///{data_dir / 'followup.sqlite'}")
    clock = SystemClock()
    store = RecordingStore(data_dir / "recordings", clock, AuditLog(clock, TEST_AUDIT_KEY))
    with db.session() as s:
        calls = s.execute(select(func.count()).select_from(CallAttempt)).scalar_one()
        answers = s.execute(select(func.count()).select_from(Answer)).scalar_one()
        tickets = s.execute(select(func.count()).select_from(Ticket)).scalar_one()
        recordings = s.execute(select(Recording.id)).scalars().all()
        assert calls > 5 and answers > 5 and tickets >= 1 and recordings
        assert all(store.verify(s, rid) is None for rid in recordings)
        # every message that went out went inside the sending window, in local time
        sent = s.execute(text("SELECT submitted_at FROM sms_messages "
                              "WHERE submitted_at IS NOT NULL")).scalars().all()
        hours = [(dt.datetime.fromisoformat(str(at)).replace(tzinfo=dt.UTC)
                  .astimezone(SHANGHAI).time()) for at in sent]
        assert all(dt.time(8) <= h < dt.time(20) for h in hours), hours
    _fhir_export_matches_the_store(data_dir, db)
    db.dispose()


def _fhir_export_matches_the_store(data_dir: Path, db: Database) -> None:
    """`followup fhir export` after the demo: every line a valid FHIR resource, and each
    finished follow-up's answers those stored (read back with a plain query)."""
    out = data_dir / "export.ndjson"
    run = subprocess.run(
        [sys.executable, "-c", "from engine.cli import main; main()", "--data-dir",
         str(data_dir), "fhir", "export", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    models = {"Questionnaire": Questionnaire, "QuestionnaireResponse": QuestionnaireResponse}
    responses: dict[tuple[int, str], dict[str, str]] = {}
    for line in out.read_text(encoding="utf-8").splitlines():
        data = json.loads(line)
        models[data["resourceType"]].model_validate(data)
        if data["resourceType"] == "QuestionnaireResponse":
            task, script = data["identifier"]["value"].split("/")
            responses[(int(task), script)] = {
                item["linkId"]: _plain(item["answer"][0]) for item in data.get("item", [])}
    stored: dict[tuple[int, str], dict[str, str]] = {}
    with db.engine.connect() as conn:
        for task, script, question, value, transcript in conn.execute(text(
                "SELECT a.task_id, a.script_id, a.question_id, a.value, a.transcript "
                "FROM answers a JOIN followup_tasks t ON t.id = a.task_id "
                "WHERE t.status = 'done' AND a.source != 'none' ORDER BY a.created_at, a.id")):
            stored.setdefault((task, script), {})[question] = transcript or value or "(audio)"
    assert responses and responses == stored


def _plain(answer: dict[str, object]) -> str:
    """A FHIR answer back in the store's words (yes/no, an option's value, digits, text)."""
    (kind, value), = answer.items()
    if kind == "valueBoolean":
        return "yes" if value else "no"
    if kind == "valueCoding":
        return str(value["code"])  # type: ignore[index]
    if kind == "valueDecimal":
        return f"{value:g}"
    if kind == "valueAttachment":  # a voice answer kept as audio only
        return "(audio)"
    return str(value)
