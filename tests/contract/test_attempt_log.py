"""The attempt log: counted when dialled, answers kept through a crash, reconciliation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from core.audit import AuditLog
from core.clock import FakeClock
from core.enums import (
    AnswerSource,
    AttemptStatus,
    DialOutcome,
    QuestionKind,
    ScriptOutcome,
    Severity,
    TaskStatus,
    TicketReason,
)
from core.store.db import Database
from core.store.models import Answer as AnswerRow
from core.store.models import CallAttempt, FollowupTask, Patient, Recording, Ticket
from core.tickets import ResponseTimes
from dialer.attempt_log import AttemptLog, CallSummary
from dialer.claims import TaskClaimer
from dialer.retry_policy import RetryPolicy
from dialer.spool_sweep import sweep_spool
from ivr.answer_reading import TRANSCRIBING
from ivr.results import Answer, TicketRequest
from recordings.store import RecordingStore
from tests.audit_key import TEST_AUDIT_KEY
from tests.contract.test_claims import NOW, RULES, TZ, _seed
from tests.contract.test_recordings import _wav


@pytest.fixture
def log(db: Database, tmp_path: Path) -> AttemptLog:
    clock = FakeClock(NOW)
    return AttemptLog(db, RetryPolicy(), RecordingStore(tmp_path / "rec", clock,
                                                        AuditLog(clock, TEST_AUDIT_KEY)), "sim")


def _claim_one(db: Database, max_attempts: int = 3) -> TaskClaimer:
    _seed(db, [{}], [{"patient_id": 1, "max_attempts": max_attempts}])
    return TaskClaimer(db, "d1", dt.timedelta(minutes=5), RULES, TZ)


def _answer(q: str, value: str, red: Severity | None = None) -> Answer:
    return Answer("s", 1, q, QuestionKind.YES_NO, AnswerSource.KEYPAD, value,
                        red_flag=red)


def test_a_call_that_never_dialled_does_not_count(db: Database, log: AttemptLog) -> None:
    task = _claim_one(db).claim(NOW, 1)[0]
    a = log.begin(task, NOW)
    status = log.finish(a, CallSummary(DialOutcome.FAILED, error="trunk down"), NOW).status
    assert status is TaskStatus.PENDING
    with db.session() as s:
        t = s.get(FollowupTask, task.task_id)
        assert t is not None and t.attempts == 0 and t.lease_owner is None
        assert t.next_attempt_at == NOW + dt.timedelta(minutes=5)


def test_completed_call_with_answers_recording_and_red_flag_ticket(
        db: Database, log: AttemptLog, tmp_path: Path) -> None:
    task = _claim_one(db).claim(NOW, 1)[0]
    a = log.begin(task, NOW)
    log.mark_dialled(a, NOW, channel="SIM/1", uniqueid="u1")
    log.mark_answered(a, NOW)
    log.save_answer(a, _answer("q1", "yes"), NOW)
    log.save_answer(a, _answer("q2", "yes", Severity.HIGH), NOW)
    log.save_answer(a, _answer("q2", "no"), NOW)  # idempotent: the first stays
    rec = tmp_path / "call.wav"
    rec.write_bytes(_wav(0.5))
    status = log.finish(a, CallSummary(
        DialOutcome.ANSWERED, ScriptOutcome.ESCALATED, recording=rec,
        tickets=(TicketRequest(TicketReason.RED_FLAG, Severity.HIGH, "chest pain: yes"),)),
        NOW).status
    assert status is TaskStatus.DONE
    with db.session() as s:
        t = s.get(FollowupTask, task.task_id)
        assert t is not None and t.attempts == 1 and t.outcome == "escalated"
        assert [(x.question_id, x.value) for x in s.execute(select(AnswerRow)).scalars()] == [
            ("q1", "yes"), ("q2", "yes")]
        ticket = s.execute(select(Ticket)).scalar_one()
        assert ticket.reason is TicketReason.RED_FLAG and ticket.priority == 1
        assert ticket.due_at == NOW + dt.timedelta(hours=4)  # a high red flag's SLA
        recording = s.execute(select(Recording)).scalar_one()
        assert recording.attempt_id == a and recording.duration_ms == 500
    assert not rec.exists()  # the spooled original goes once its stored copy verifies


def test_a_hospitals_own_response_time_is_the_tickets_due_time(
        db: Database, tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    log = AttemptLog(db, RetryPolicy(), RecordingStore(tmp_path / "rec", clock,
                                                       AuditLog(clock, TEST_AUDIT_KEY)), "sim",
                     ResponseTimes({TicketReason.ATTEMPTS_EXHAUSTED: dt.timedelta(hours=8)}))
    task = _claim_one(db, max_attempts=1).claim(NOW, 1)[0]
    a = log.begin(task, NOW)
    log.mark_dialled(a, NOW)
    log.finish(a, CallSummary(DialOutcome.NO_ANSWER, hangup_cause=19), NOW)
    with db.session() as s:
        ticket = s.execute(select(Ticket)).scalar_one()
    assert (ticket.reason, ticket.due_at) == (TicketReason.ATTEMPTS_EXHAUSTED,
                                              NOW + dt.timedelta(hours=8))


def test_last_no_answer_raises_callback_ticket(db: Database, log: AttemptLog) -> None:
    claimer = _claim_one(db, max_attempts=1)
    task = claimer.claim(NOW, 1)[0]
    a = log.begin(task, NOW)
    log.mark_dialled(a, NOW)
    assert log.finish(a, CallSummary(DialOutcome.NO_ANSWER, hangup_cause=19), NOW).status \
        is TaskStatus.FAILED
    with db.session() as s:
        assert s.execute(select(Ticket.reason)).scalar_one() is TicketReason.ATTEMPTS_EXHAUSTED


def test_opt_out_is_written_to_the_patient(db: Database, log: AttemptLog) -> None:
    task = _claim_one(db).claim(NOW, 1)[0]
    a = log.begin(task, NOW)
    log.mark_dialled(a, NOW)
    log.finish(a, CallSummary(DialOutcome.ANSWERED, ScriptOutcome.OPTED_OUT, opted_out=True),
               NOW)
    with db.session() as s:
        p = s.get(Patient, task.patient_id)
        assert p is not None and p.opt_out_phone
        assert s.get(FollowupTask, task.task_id).status is TaskStatus.STOPPED  # type: ignore[union-attr]


def test_reconcile_after_a_crash_mid_call_keeps_answers(db: Database, log: AttemptLog) -> None:
    claimer = _claim_one(db)
    task = claimer.claim(NOW, 1)[0]
    a = log.begin(task, NOW)
    log.mark_dialled(a, NOW)
    log.mark_answered(a, NOW)
    log.save_answer(a, _answer("q1", "no"), NOW)
    # ... the process dies here; a new one starts:
    later = NOW + dt.timedelta(minutes=1)
    assert log.reconcile(later, live_attempts=set(), all_claims_are_dead=True) == 1
    with db.session() as s:
        attempt = s.get(CallAttempt, a)
        assert attempt is not None and attempt.status is AttemptStatus.UNKNOWN
        t = s.get(FollowupTask, task.task_id)
        assert t is not None and t.status is TaskStatus.PENDING and t.attempts == 1
        assert t.next_attempt_at == later + dt.timedelta(hours=2)  # partial: resume later
    assert [x.question_id for x, _ in log.earlier_answers(task.task_id)] == ["q1"]


def test_reconcile_leaves_live_calls_and_foreign_leases(db: Database, log: AttemptLog) -> None:
    claimer = _claim_one(db)
    task = claimer.claim(NOW, 1)[0]
    a = log.begin(task, NOW)
    assert log.reconcile(NOW, live_attempts={a}, all_claims_are_dead=True) == 0
    # another live process's lease (PostgreSQL mode) is not touched before it expires
    assert log.reconcile(NOW, live_attempts=set(), all_claims_are_dead=False) == 0
    expired = NOW + dt.timedelta(minutes=6)
    assert log.reconcile(expired, live_attempts=set(), all_claims_are_dead=False) == 1
    with db.session() as s:
        t = s.get(FollowupTask, task.task_id)
        # an attempt whose fate is unknown may have rung the phone: it counts
        assert t is not None and t.status is TaskStatus.PENDING and t.attempts == 1


def test_answered_counts_once_and_ids_are_kept(db: Database, log: AttemptLog) -> None:
    task = _claim_one(db).claim(NOW, 1)[0]
    a = log.begin(task, NOW)
    log.mark_answered(a, NOW)  # answered implies dialled
    log.finish(a, CallSummary(DialOutcome.ANSWERED, ScriptOutcome.COMPLETED,
                              channel="PJSIP/carrier-00000001", uniqueid="1764.1",
                              linkedid="1764.1", answered_at=NOW), NOW)
    with db.session() as s:
        t = s.get(FollowupTask, task.task_id)
        attempt = s.get(CallAttempt, a)
        assert t is not None and t.attempts == 1
        assert attempt is not None and attempt.dialled and attempt.answered_at == NOW
        assert (attempt.channel, attempt.uniqueid, attempt.linkedid) == (
            "PJSIP/carrier-00000001", "1764.1", "1764.1")


def test_reconcile_releases_claims_without_attempts(db: Database, log: AttemptLog) -> None:
    task = _claim_one(db).claim(NOW, 1)[0]
    log.reconcile(NOW, live_attempts=set(), all_claims_are_dead=True)
    with db.session() as s:
        t = s.get(FollowupTask, task.task_id)
        assert t is not None and t.status is TaskStatus.PENDING and t.lease_owner is None


def test_merged_riders_end_with_their_call(db: Database, log: AttemptLog) -> None:
    _seed(db, [{}], [{"patient_id": 1, "call_scripts": ["s", "s2"]},
                     {"patient_id": 1, "offset_days": 2, "script_id": "s2",
                      "status": TaskStatus.MERGED}])
    with db.session() as s:
        host, rider = sorted(s.execute(select(FollowupTask)).scalars(), key=lambda t: t.id)
        rider.merged_into_id = host.id
    claimer = TaskClaimer(db, "d1", dt.timedelta(minutes=5), RULES, TZ)
    task = claimer.claim(NOW, 5)[0]
    a = log.begin(task, NOW)
    log.mark_dialled(a, NOW)
    log.finish(a, CallSummary(DialOutcome.BUSY), NOW)  # retried later: the rider waits
    with db.session() as s:
        assert s.get(FollowupTask, rider.id).status is TaskStatus.MERGED  # type: ignore[union-attr]
    task = claimer.claim(NOW + dt.timedelta(minutes=20), 5)[0]
    a = log.begin(task, NOW)
    log.mark_dialled(a, NOW)
    log.finish(a, CallSummary(DialOutcome.ANSWERED, ScriptOutcome.COMPLETED), NOW)
    with db.session() as s:
        r = s.get(FollowupTask, rider.id)
        assert r is not None and r.status is TaskStatus.DONE and r.outcome == "completed"


def _voice(q: str, clip: Path) -> Answer:
    return Answer("s", 1, q, QuestionKind.VOICE, AnswerSource.VOICE, None,
                  transcript="还好", confidence=0.9, audio=clip, offset_ms=1200)


def test_a_failing_recordings_folder_loses_no_answer_and_no_call(
        db: Database, tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    broken = tmp_path / "rec"
    broken.write_text("not a folder")  # as good as full or read-only: nothing can be filed
    store = RecordingStore(broken, clock, AuditLog(clock, TEST_AUDIT_KEY))
    log = AttemptLog(db, RetryPolicy(), store, "sim")
    task = _claim_one(db).claim(NOW, 1)[0]
    a = log.begin(task, NOW)
    log.mark_answered(a, NOW)
    clip = tmp_path / "clip.wav"
    clip.write_bytes(_wav(0.4))
    log.save_answer(a, _voice("free", clip), NOW)
    rec = tmp_path / "call.wav"
    rec.write_bytes(_wav(0.5))
    result = log.finish(a, CallSummary(DialOutcome.ANSWERED, ScriptOutcome.COMPLETED,
                                       recording=rec), NOW)
    assert result.status is TaskStatus.DONE and result.spooled is not None
    with db.session() as s:
        answer = s.execute(select(AnswerRow)).scalar_one()
        assert (answer.transcript, answer.recording_id, answer.clip_spool) == (
            "还好", None, str(clip))
        attempt = s.get(CallAttempt, a)
        assert attempt is not None and attempt.dial_outcome is DialOutcome.ANSWERED
        assert attempt.recording_spool == str(rec)
    assert sweep_spool(db, log, store).problem is not None  # still broken: nothing moves
    broken.unlink()  # the folder is repaired
    sweep = sweep_spool(db, log, store)
    assert (sweep.filed, sweep.waiting, sweep.problem) == (2, 0, None)
    with db.session() as s:
        answer = s.execute(select(AnswerRow)).scalar_one()
        assert answer.recording_id is not None and answer.clip_spool is None
        kinds = sorted(r.kind.value for r in s.execute(select(Recording)).scalars())
        assert kinds == ["answer_clip", "call"]
    assert not clip.exists() and not rec.exists()


def test_reconcile_never_takes_a_lease_that_is_not_expired(db: Database,
                                                           log: AttemptLog) -> None:
    """A claim without an expiry (or one still running) belongs to a live dialer."""
    task = _claim_one(db).claim(NOW, 1)[0]
    a = log.begin(task, NOW)
    with db.session() as s:
        t = s.get(FollowupTask, task.task_id)
        assert t is not None
        t.lease_expires_at = None
    later = NOW + dt.timedelta(hours=1)
    assert log.reconcile(later, live_attempts=set(), all_claims_are_dead=False) == 0
    with db.session() as s:
        attempt = s.get(CallAttempt, a)
        assert attempt is not None and attempt.status is AttemptStatus.DIALING


def test_a_finished_attempt_is_never_rewritten_by_a_reclaim(db: Database,
                                                            log: AttemptLog) -> None:
    task = _claim_one(db).claim(NOW, 1)[0]
    a = log.begin(task, NOW)
    log.mark_answered(a, NOW)
    log.finish(a, CallSummary(DialOutcome.ANSWERED, ScriptOutcome.COMPLETED), NOW)
    later = NOW + dt.timedelta(hours=1)
    assert log.reconcile(later, live_attempts=set(), all_claims_are_dead=False) == 0
    with db.session() as s:
        attempt = s.get(CallAttempt, a)
        assert attempt is not None and attempt.status is AttemptStatus.ENDED
        assert attempt.ended_at == NOW and attempt.error is None


def test_an_outcome_that_arrives_after_a_reclaim_is_still_recorded(
        db: Database, log: AttemptLog) -> None:
    """The dialer lost its lease mid-call (e.g. the store was away): the red flag the
    patient gave still reaches a person and the true outcome is stored."""
    task = _claim_one(db).claim(NOW, 1)[0]
    a = log.begin(task, NOW)
    log.mark_answered(a, NOW)
    later = NOW + dt.timedelta(minutes=6)
    assert log.reconcile(later, live_attempts=set(), all_claims_are_dead=False) == 1
    flag = TicketRequest(TicketReason.RED_FLAG, Severity.CRITICAL, "chest pain")
    result = log.finish(a, CallSummary(DialOutcome.ANSWERED, ScriptOutcome.ESCALATED,
                                       tickets=(flag,)), later)
    assert result.status is TaskStatus.DONE
    with db.session() as s:
        attempt = s.get(CallAttempt, a)
        assert attempt is not None and attempt.status is AttemptStatus.ENDED
        assert attempt.script_outcome is ScriptOutcome.ESCALATED
        assert "reclaim" in (attempt.error or "")
        t = s.get(FollowupTask, task.task_id)
        assert t is not None and t.attempts == 1  # counted once, by the reclaim
        ticket = s.execute(select(Ticket)).scalar_one()
        assert (ticket.reason, ticket.severity) == (TicketReason.RED_FLAG, Severity.CRITICAL)


def test_an_error_on_our_side_counts_so_it_cannot_loop(db: Database,
                                                      log: AttemptLog) -> None:
    claimer = _claim_one(db, max_attempts=2)
    statuses = []
    for minute in (0, 40):
        now = NOW + dt.timedelta(minutes=minute)
        task = claimer.claim(now, 1)[0]
        a = log.begin(task, now)
        statuses.append(log.finish(a, CallSummary(DialOutcome.ERROR, error="bug"), now).status)
    assert statuses == [TaskStatus.PENDING, TaskStatus.FAILED]
    with db.session() as s:
        assert s.execute(select(Ticket.reason)).scalar_one() is TicketReason.ATTEMPTS_EXHAUSTED


def test_finish_is_safe_to_repeat(db: Database, log: AttemptLog) -> None:
    """A retried outcome write whose first commit did land changes nothing."""
    task = _claim_one(db).claim(NOW, 1)[0]
    a = log.begin(task, NOW)
    flag = TicketRequest(TicketReason.RED_FLAG, Severity.HIGH, "pain")
    summary = CallSummary(DialOutcome.ANSWERED, ScriptOutcome.ESCALATED, tickets=(flag,))
    assert log.finish(a, summary, NOW).status is TaskStatus.DONE
    assert log.finish(a, summary, NOW).status is TaskStatus.DONE
    with db.session() as s:
        assert len(s.execute(select(Ticket)).scalars().all()) == 1
        t = s.get(FollowupTask, task.task_id)
        assert t is not None and t.attempts == 1


def test_a_patient_with_a_live_call_is_not_called_twice(db: Database, log: AttemptLog) -> None:
    """If a claim slips through while the patient is still on a call (a lease lost to a
    late renewal), the database refuses the second live attempt and the claim goes back."""
    _seed(db, [{}], [{"patient_id": 1}, {"patient_id": 1, "offset_days": 2}])
    claimer = TaskClaimer(db, "d1", dt.timedelta(minutes=5), RULES, TZ)
    first = claimer.claim(NOW, 1)[0]
    assert log.begin(first, NOW) is not None
    with db.session() as s:  # its claim was taken back while the call is still up
        t = s.get(FollowupTask, first.task_id)
        assert t is not None
        t.status = TaskStatus.PENDING
        t.next_attempt_at = NOW + dt.timedelta(days=1)
    second = claimer.claim(NOW, 1)[0]
    assert second.task_id != first.task_id
    assert log.begin(second, NOW) is None
    with db.session() as s:
        t = s.get(FollowupTask, second.task_id)
        assert t is not None and t.status is TaskStatus.PENDING and t.lease_owner is None
        assert t.next_attempt_at == NOW + dt.timedelta(minutes=10)
        assert len(s.execute(select(CallAttempt)).scalars().all()) == 1


def test_a_voice_answer_is_stored_first_and_gets_its_transcript_later(
        db: Database, log: AttemptLog, tmp_path: Path) -> None:
    task = _claim_one(db).claim(NOW, 1)[0]
    a = log.begin(task, NOW)
    assert a is not None
    clip = tmp_path / "clip.wav"
    clip.write_bytes(_wav(0.4))
    first = Answer("s", 1, "free", QuestionKind.VOICE, AnswerSource.VOICE, None,
                   needs_review=True, note=TRANSCRIBING, audio=clip, offset_ms=900)
    log.save_answer(a, first, NOW)
    with db.session() as s:
        row = s.execute(select(AnswerRow)).scalar_one()
        assert (row.transcript, row.note, row.recording_id is not None) == (
            None, TRANSCRIBING, True)
    log.save_answer(a, _voice("free", clip), NOW)  # the transcript arrives
    log.save_answer(a, _voice("free", clip), NOW)  # and a repeat changes nothing
    with db.session() as s:
        row = s.execute(select(AnswerRow)).scalar_one()
        assert (row.transcript, row.confidence, row.note, row.needs_review) == (
            "还好", 0.9, None, False)
        assert len(s.execute(select(Recording)).scalars().all()) == 1
