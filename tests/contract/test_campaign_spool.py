"""A dialer that starts files what an earlier one left in the spool: the dialer that
spooled a clip and a call recording while the recordings folder was full may be killed
before it files them, and the folder may be repaired before any dialer sees an alarm."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from pathlib import Path

from sqlalchemy import select

from core.audit import AuditLog
from core.calling_window import CallingRules
from core.clock import AcceleratedClock
from core.enums import AnswerSource, DialOutcome, QuestionKind, ScriptOutcome
from core.store.db import Database
from core.store.models import Answer as AnswerRow
from core.store.models import CallAttempt
from dialer.attempt_log import AttemptLog, CallSummary
from dialer.campaign import Campaign, CampaignOptions
from dialer.claims import TaskClaimer
from dialer.pacing import Pacer
from dialer.retry_policy import RetryPolicy
from dialer.spool_sweep import sweep_spool
from ivr.results import Answer
from recordings.store import RecordingStore
from tests.audit_key import TEST_AUDIT_KEY
from tests.contract.call_support import planner
from tests.contract.test_campaign import FakeTelephony
from tests.contract.test_claims import NOW, TZ, _seed
from tests.contract.test_recordings import _wav

ALWAYS = CallingRules.from_settings("00:00-24:00", [])


async def test_a_new_dialer_files_what_a_dead_one_left_in_the_spool(
        db: Database, tmp_path: Path) -> None:
    clock = AcceleratedClock(NOW, speed=600)
    folder = tmp_path / "rec"
    folder.write_text("full")  # as good as full: nothing can be filed
    full = RecordingStore(folder, clock, AuditLog(clock, TEST_AUDIT_KEY))
    _seed(db, [{}], [{"patient_id": 1, "calling_window": "00:00-24:00"}])
    claimer = TaskClaimer(db, "dead", dt.timedelta(minutes=10), ALWAYS, TZ)
    dead = AttemptLog(db, RetryPolicy(), full, "fake")
    attempt = dead.begin(claimer.claim(NOW, 1)[0], NOW)
    assert attempt is not None
    clip, call = tmp_path / "clip.wav", tmp_path / "call.wav"
    clip.write_bytes(_wav(0.4))
    call.write_bytes(_wav(0.5))
    dead.save_answer(attempt, Answer("s", 1, "free", QuestionKind.VOICE, AnswerSource.VOICE,
                                     None, audio=clip, offset_ms=1200), NOW)
    dead.finish(attempt, CallSummary(DialOutcome.ANSWERED, ScriptOutcome.COMPLETED,
                                     recording=call), NOW)
    # ... and that dialer dies; the folder is repaired before anyone raises an alarm
    folder.unlink()
    store = RecordingStore(folder, clock, AuditLog(clock, TEST_AUDIT_KEY))
    log = AttemptLog(db, RetryPolicy(), store, "fake")
    campaign = Campaign(
        db, TaskClaimer(db, "new", dt.timedelta(minutes=10), ALWAYS, TZ), log,
        planner(db, log, tmp_path), FakeTelephony(clock, {}), Pacer(2, 50.0, clock, clock.sleep),
        clock, clock.sleep, CampaignOptions(poll_interval_s=5),
        spool_sweep=functools.partial(sweep_spool, db, log, store))
    await campaign.run(asyncio.Event(), until_idle=True)
    with db.session() as s:
        answer = s.execute(select(AnswerRow)).scalar_one()
        row = s.get(CallAttempt, attempt)
        assert row is not None
        assert (answer.clip_spool, row.recording_spool) == (None, None)
        assert answer.recording_id is not None
    assert not clip.exists() and not call.exists()
