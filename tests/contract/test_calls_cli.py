"""`followup calls --patient ID` and `followup calls show ATTEMPT_ID` over the console's seeded
hospital (answers, a voice transcript, a red flag, a filed recording, a ticket): what they
print is recomputed from the stored rows; each read is audited as `cli:<login>`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from core.audit import AuditLog
from core.clock import FakeClock
from core.store.db import Database
from core.store.models import Answer, AuditEntry, CallAttempt, Patient, Recording, Ticket
from engine.cli import cli, main
from recordings.store import RecordingStore
from tests.audit_key import TEST_AUDIT_KEY
from tests.unit.console.seed import Seeded, seed


@pytest.fixture
def seeded(tmp_path: Path, clock: FakeClock,
           monkeypatch: pytest.MonkeyPatch) -> tuple[Database, Seeded]:
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    monkeypatch.setenv("FOLLOWUP_DATABASE__URL", url)
    monkeypatch.delenv("FOLLOWUP_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "recordings").mkdir()  # where the CLI's audit anchor goes
    db = Database(url)
    db.migrate()
    audit = AuditLog(clock, TEST_AUDIT_KEY)
    out = seed(db, clock, RecordingStore(tmp_path / "seeded-recordings", clock, audit))
    return db, out


def _run(tmp_path: Path, *args: str) -> tuple[int, str]:
    out = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), *args])
    return out.exit_code, out.output


def test_a_patients_calls_by_his_id_or_mrn(seeded: tuple[Database, Seeded],
                                           tmp_path: Path) -> None:
    db, sd = seeded
    with db.session() as s:
        patient = s.get(Patient, sd.card_patient)
        assert patient is not None
        attempts = s.scalars(select(CallAttempt).where(
            CallAttempt.patient_id == patient.id)).all()
        rec = s.get(Recording, sd.card_recording)
        assert rec is not None
        answers = s.scalars(select(Answer).where(Answer.attempt_id == sd.card_call)
                            .order_by(Answer.offset_ms)).all()
    code, out = _run(tmp_path, "calls", "--patient", patient.his_id)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith(f"{patient.name}  HIS {patient.his_id}  MRN {patient.mrn}")
    assert lines[1] == f"{len(attempts)} calls (times Asia/Shanghai):"
    # the seeded call was placed 30 minutes before 01:00 UTC: 08:30 in Shanghai
    assert lines[2] == (f"call {sd.card_call}  2026-03-10 08:30  CARD  "
                        "cardiology-post-discharge  attempt 1/3  completed")
    assert [a.question_id for a in answers] == ["chest_pain", "comment", "breathless"]
    assert lines[3] == ('  answers: chest_pain = no; comment = (voice) "感觉好多了 只是有点累"; '
                        "breathless = yes [red flag: high]")
    assert lines[4] == f"  recording: {rec.id} {rec.path} sha256 {rec.sha256}"
    assert lines[5] == f"  ticket {sd.card_ticket}: red flag, high, open"
    assert _run(tmp_path, "calls", "--patient", patient.mrn) == (code, out)
    with db.session() as s:
        viewed = s.execute(select(AuditEntry.action, AuditEntry.actor, AuditEntry.object_id)
                           .where(AuditEntry.action == "patient.view")).all()
    assert [(a, who.startswith("cli:"), oid) for a, who, oid in viewed] == [
        ("patient.view", True, str(patient.id))] * 2


def test_one_call_in_full(seeded: tuple[Database, Seeded], tmp_path: Path) -> None:
    db, sd = seeded
    with db.session() as s:
        ticket = s.get(Ticket, sd.card_ticket)
        rec = s.get(Recording, sd.card_recording)
        assert ticket is not None and rec is not None
    code, out = _run(tmp_path, "calls", "show", str(sd.card_call))
    assert code == 0, out
    text = out.splitlines()
    facts = dict(re.split(r" {2,}", line, maxsplit=1) for line in text[:11])
    assert facts == {
        "call": f"{sd.card_call}, attempt 1/3 of follow-up {ticket.task_id}",
        "patient": "王芳  HIS H1  MRN MRN0001  phone +8613800130001",
        "department": "CARD 心内科", "script": "cardiology-post-discharge v1",
        "number": "+8613800000000", "outcome": "completed (dial: answered)",
        "placed (Asia/Shanghai)": "2026-03-10 08:30:00", "answered": "2026-03-10 08:30:00",
        "ended": "2026-03-10 08:32:00", "talk time": "-",
        "recording": f"{rec.id} {rec.path} sha256 {rec.sha256}"}
    assert "  cardiology-post-discharge/breathless  yes  (yes_no, keypad)" in text
    assert '    transcript: "感觉好多了 只是有点累", confidence 0.42, needs review' in text
    assert f"    voice clip: recording {sd.card_clip}" in text
    assert "red flags: breathless (high)" in text
    assert f'  ticket {sd.card_ticket}: red flag, high, open: "出院后气短"' in text
    with db.session() as s:
        assert s.scalars(select(AuditEntry.action).where(
            AuditEntry.object_id == str(sd.card_call),
            AuditEntry.action == "call.view")).all() == ["call.view"]


@pytest.mark.parametrize(("argv", "expected"), [
    (["calls", "--patient", "nobody"], "error [not_found]: no patient with HIS id or MRN"),
    (["calls", "show", "999999"], "error [not_found]: call 999999 not found"),
    (["calls"], "Error: give --patient ID, or `show ATTEMPT_ID`"),
    (["calls", "--patient", "H1", "show", "1"], "Error: --patient lists a patient's calls"),
])
def test_errors_are_one_plain_line(seeded: tuple[Database, Seeded], tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str], argv: list[str],
                                   expected: str) -> None:
    monkeypatch.setattr("sys.argv", ["followup", "--data-dir", str(tmp_path), *argv])
    with pytest.raises(SystemExit) as exited:
        main()
    err = capsys.readouterr().err.strip()
    assert exited.value.code == 2 and "Traceback" not in err
    assert err.splitlines()[-1].startswith(expected), err
