"""A spooled answer clip is filed once, whoever gets there first: the dialer that took the
answer files it right after storing the row, and another dialer's spool sweep may list the
row in between (a dialer sweeps the spool when it starts)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from core.audit import AuditLog
from core.clock import FakeClock
from core.enums import AnswerSource, DialOutcome, QuestionKind, RecordingKind, ScriptOutcome
from core.store.db import Database
from core.store.models import Answer as AnswerRow
from core.store.models import Recording
from dialer.attempt_log import AttemptLog, CallSummary
from dialer.retry_policy import RetryPolicy
from ivr.results import Answer
from recordings.store import RecordingStore
from tests.audit_key import TEST_AUDIT_KEY
from tests.contract.test_attempt_log import _claim_one
from tests.contract.test_claims import NOW
from tests.contract.test_recordings import _wav


def test_a_clip_two_dialers_file_at_once_is_filed_once(db: Database, tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    folder = tmp_path / "rec"
    folder.write_text("full")  # the clip stays in the spool when the answer is stored
    audit = AuditLog(clock, TEST_AUDIT_KEY)
    log = AttemptLog(db, RetryPolicy(), RecordingStore(folder, clock, audit), "sim")
    attempt = log.begin(_claim_one(db).claim(NOW, 1)[0], NOW)
    assert attempt is not None
    clip = tmp_path / "clip.wav"
    clip.write_bytes(_wav(0.4))
    log.save_answer(attempt, Answer("s", 1, "free", QuestionKind.VOICE, AnswerSource.VOICE,
                                    None, audio=clip, offset_ms=1200), NOW)
    folder.unlink()
    with db.session() as s:
        row = s.execute(select(AnswerRow)).scalar_one()
        answer_id, department_id = row.id, 1
    # the sweep of one dialer and the retry of the other, each with the path it listed
    assert log.file_clip(answer_id, attempt, department_id, clip)
    assert log.file_clip(answer_id, attempt, department_id, clip)
    with db.session() as s:
        row = s.execute(select(AnswerRow)).scalar_one()
        clips = list(s.execute(select(Recording).where(
            Recording.kind == RecordingKind.ANSWER_CLIP)).scalars())
    assert [c.id for c in clips] == [row.recording_id] and row.clip_spool is None
    assert not clip.exists()


def test_a_clip_spooled_for_a_moment_is_reported_when_the_call_ends(
        db: Database, tmp_path: Path) -> None:
    """The folder fails while a voice answer is stored and recovers before the call ends:
    the call's recording files fine, and `finish` still says a clip waits in the spool, so
    the campaign sweeps it (the fault run once ended with one clip never filed)."""
    clock = FakeClock(NOW)
    folder = tmp_path / "rec"
    folder.write_text("full")
    audit = AuditLog(clock, TEST_AUDIT_KEY)
    log = AttemptLog(db, RetryPolicy(), RecordingStore(folder, clock, audit), "sim")
    attempt = log.begin(_claim_one(db).claim(NOW, 1)[0], NOW)
    assert attempt is not None
    clip, call = tmp_path / "clip.wav", tmp_path / "call.wav"
    clip.write_bytes(_wav(0.4))
    call.write_bytes(_wav(0.6))
    log.save_answer(attempt, Answer("s", 1, "free", QuestionKind.VOICE, AnswerSource.VOICE,
                                    None, audio=clip, offset_ms=1200), NOW)
    folder.unlink()  # room again before the call ends
    done = log.finish(attempt, CallSummary(DialOutcome.ANSWERED, ScriptOutcome.COMPLETED,
                                           recording=call), NOW)
    assert done.spooled == "1 answer clip(s) kept in the spool"
    with db.session() as s:
        assert s.execute(select(Recording.kind)).scalars().all() == [RecordingKind.CALL]
