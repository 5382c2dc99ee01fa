"""Writes what happens to a call as it happens, so a crash or a fault loses nothing.

The order is the crash-safety argument:
1. `begin` writes the attempt (status dialing, not yet dialled) BEFORE the call is placed;
2. `mark_dialled` when the network really dialled (the attempt counts from here) and
   `mark_answered` when the patient picked up, both from the backend's progress events;
3. answers are saved one by one as the patient gives them (`save_answer`): the answer row
   first, its voice clip filed after, so a recordings folder that fails keeps the answer
   and leaves the clip in the spool (`dialer.spool_sweep` files it later);
4. `finish` writes the outcome, the task's next state, tickets, opt-out and the recording in
   one transaction and releases the claim; a recording that cannot be filed stays spooled,
   it never fails the call.
Counting an attempt is one conditional UPDATE (`dialled` false -> true), so the progress
event, `finish` and a reclaim can never count one call twice.

`reconcile` settles what a dead dialer left behind: at start (SQLite: every claim is dead)
and periodically in every live dialer (expired leases only). It only touches attempts still
live and tasks still claimed with an expired lease, under row locks on PostgreSQL, so an
attempt another dialer has just finished is never rewritten.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Table, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.enums import (
    AttemptStatus,
    DialOutcome,
    RecordingKind,
    ScriptOutcome,
    TaskStatus,
)
from core.store.db import Database
from core.store.models import Answer as AnswerRow
from core.store.models import CallAttempt, FollowupTask, Patient, Recording
from core.tickets import DEFAULT_RESPONSE_TIMES, ResponseTimes
from dialer.answering_machine import AmdVerdict
from dialer.call_plan import AttemptId
from dialer.claims import ClaimedTask
from dialer.retry_policy import RetryKey, RetryPolicy
from ivr.answer_reading import TRANSCRIBING
from ivr.result_store import add_ticket, answer_row, close_task
from ivr.results import Answer, TicketRequest
from recordings.store import RecordingStore, StoredRecording

log = logging.getLogger(__name__)

LIVE = (AttemptStatus.DIALING, AttemptStatus.IN_CALL)
PATIENT_BUSY_RETRY = dt.timedelta(minutes=10)

# The per-call progress writes, built once as Core statements: they run on every call, and
# building ORM statements per call cost more CPU than the database work itself
# (bench/dialer.py).
ATTEMPTS: Table = CallAttempt.__table__  # type: ignore[assignment]
TASKS: Table = FollowupTask.__table__  # type: ignore[assignment]
_FLIP_DIALLED = (update(ATTEMPTS)
                 .where(ATTEMPTS.c.id == bindparam("a_id"), ATTEMPTS.c.dialled.is_(False))
                 .values(dialled=True))
_COUNT_TASK = (update(TASKS).where(TASKS.c.id == bindparam("t_id"))
               .values(attempts=TASKS.c.attempts + 1, updated_at=bindparam("t_now")))
_COUNT_TASK_OF_ATTEMPT = (
    update(TASKS)
    .where(TASKS.c.id == select(ATTEMPTS.c.task_id).where(ATTEMPTS.c.id == bindparam("a_id"))
           .scalar_subquery())
    .values(attempts=TASKS.c.attempts + 1, updated_at=bindparam("t_now")))
_MARK_ANSWERED = (
    update(ATTEMPTS)
    .where(ATTEMPTS.c.id == bindparam("a_id"), ATTEMPTS.c.status.in_(LIVE))
    .values(status=AttemptStatus.IN_CALL,
            answered_at=func.coalesce(ATTEMPTS.c.answered_at, bindparam("a_now"))))
_CHANNEL_IDS = ("channel", "uniqueid", "linkedid")


@dataclass(frozen=True)
class CallSummary:
    """How one attempt ended, for `finish`."""

    dial: DialOutcome
    script: ScriptOutcome | None = None
    amd: AmdVerdict | None = None  # answering-machine detection on an answered call
    hangup_cause: int | None = None
    tickets: tuple[TicketRequest, ...] = ()
    opted_out: bool = False
    recording: Path | None = None
    agent: str | None = None
    talk_time_s: int | None = None
    error: str | None = None
    channel: str | None = None
    uniqueid: str | None = None
    linkedid: str | None = None
    answered_at: dt.datetime | None = None
    trunk: str | None = None
    server: str | None = None
    voicemail_left: bool = False


@dataclass(frozen=True)
class FinishResult:
    """What `finish` decided. `spooled` says why the call recording, or a voice clip of the
    call, stayed in the spool (the recordings folder failed); None when nothing did."""

    status: TaskStatus
    tickets: int = 0
    spooled: str | None = None


class AttemptLog:
    """The store side of placing a call."""

    def __init__(self, db: Database, policy: RetryPolicy, recordings: RecordingStore,
                 backend: str, response_times: ResponseTimes = DEFAULT_RESPONSE_TIMES) -> None:
        self._db = db
        self._policy = policy
        self._recordings = recordings
        self.backend = backend
        self._response_times = response_times  # each ticket's due_at (its SLA)

    def begin(self, task: ClaimedTask, now: dt.datetime) -> AttemptId | None:
        """Write the attempt before anything is dialled. None when the patient already
        has a live call (the database's one-live-call-per-patient index refused it): the
        claim is then given back, to be tried again after `PATIENT_BUSY_RETRY`."""
        try:
            with self._db.session() as s:
                number = s.execute(select(func.count()).select_from(CallAttempt).where(
                    CallAttempt.task_id == task.task_id)).scalar_one() + 1
                attempt = CallAttempt(task_id=task.task_id, patient_id=task.patient_id,
                                      department_id=task.department_id, number=number,
                                      status=AttemptStatus.DIALING, backend=self.backend,
                                      phone=task.phone, dialled=False, created_at=now)
                s.add(attempt)
                s.flush()
                return AttemptId(attempt.id)
        except IntegrityError:
            log.warning("task %s: patient %s already has a live call; tried again later",
                        task.task_id, task.patient_id)
        with self._db.session() as s:
            s.execute(update(FollowupTask).where(FollowupTask.id == task.task_id,
                                                 FollowupTask.status == TaskStatus.CLAIMED)
                      .values(status=TaskStatus.PENDING, lease_owner=None,
                              lease_expires_at=None, updated_at=now,
                              next_attempt_at=now + PATIENT_BUSY_RETRY))
        return None

    @staticmethod
    def _count(s: Session | Connection, attempt_id: int, task_id: int | None,
               now: dt.datetime) -> bool:
        """Count the attempt against its task once, whoever gets here first (`task_id`
        None: the attempt's own task, looked up in the same statement)."""
        flipped = s.execute(_FLIP_DIALLED, {"a_id": attempt_id})
        if not flipped.rowcount:  # type: ignore[attr-defined]
            return False
        if task_id is None:
            s.execute(_COUNT_TASK_OF_ATTEMPT, {"a_id": attempt_id, "t_now": now})
        else:
            s.execute(_COUNT_TASK, {"t_id": task_id, "t_now": now})
        return True

    def mark_dialled(self, attempt_id: AttemptId, now: dt.datetime, channel: str | None = None,
                     uniqueid: str | None = None, linkedid: str | None = None) -> None:
        """The network dialled: the attempt counts from now (once)."""
        with self._db.connection() as conn:
            self._count(conn, attempt_id, None, now)
            values = {k: v for k, v in zip(_CHANNEL_IDS, (channel, uniqueid, linkedid),
                                           strict=True) if v}
            if values:
                conn.execute(update(ATTEMPTS).where(ATTEMPTS.c.id == attempt_id)
                             .values(**values))

    def mark_answered(self, attempt_id: AttemptId, now: dt.datetime) -> None:
        """The patient picked up (so the call was dialled: it counts from now). An attempt
        already settled is left as it is."""
        with self._db.connection() as conn:
            self._count(conn, attempt_id, None, now)
            conn.execute(_MARK_ANSWERED, {"a_id": attempt_id, "a_now": now})

    def save_answer(self, attempt_id: AttemptId, answer: Answer, now: dt.datetime) -> None:
        """Store one answer now (a later hangup never loses it). Idempotent per question,
        except that a voice answer stored before its transcript gets the transcript.

        The answer row commits first; its voice clip is filed after. When the recordings
        folder fails (full, read-only) the clip stays where it is and the row keeps its
        path in `clip_spool` for `sweep_spool`: the answer is never lost to a disk."""
        with self._db.session() as s:
            attempt = s.get(CallAttempt, attempt_id)
            if attempt is None:
                return
            kept = s.execute(select(AnswerRow).where(
                AnswerRow.attempt_id == attempt_id, AnswerRow.script_id == answer.script_id,
                AnswerRow.question_id == answer.question_id)).scalar_one_or_none()
            if kept is not None:
                if kept.note == TRANSCRIBING and answer.note != TRANSCRIBING:
                    kept.transcript = answer.transcript
                    kept.confidence = answer.confidence
                    kept.needs_review = answer.needs_review
                    kept.note = answer.note
                return
            clip = answer.audio if answer.audio is not None and answer.audio.exists() else None
            row = answer_row(answer, attempt_id=attempt_id, task_id=attempt.task_id, now=now,
                             clip_spool=str(clip) if clip else None)
            s.add(row)
            s.flush()
            answer_id, department_id = row.id, attempt.department_id
        if clip is not None:
            self.file_clip(answer_id, attempt_id, department_id, clip)

    def file_clip(self, answer_id: int, attempt_id: int, department_id: int,
                  clip: Path) -> bool:
        """File a voice answer's clip and link it to its answer; False (the clip stays in
        the spool, its path on the answer) when the recordings folder fails.

        The answer row is locked and its spool path re-read first: the dialer that took the
        answer and another dialer's spool sweep may both try, and only the first files it
        (the other finds the path cleared and returns True)."""
        try:
            with self._db.session() as s:
                spooled = s.execute(select(AnswerRow.clip_spool)
                                    .where(AnswerRow.id == answer_id)
                                    .with_for_update()).scalar_one_or_none()
                if spooled is None:
                    return True  # filed already
                stored = self._recordings.file_path(
                    s, clip, kind=RecordingKind.ANSWER_CLIP, attempt_id=attempt_id,
                    department_id=department_id)
                s.execute(update(AnswerRow).where(AnswerRow.id == answer_id)
                          .values(recording_id=stored.id, clip_spool=None))
        except OSError as exc:
            log.error("answer %s: clip kept in the spool (%s): %s", answer_id, clip, exc)
            return False
        self._recordings.discard_source(clip, stored)
        return True

    def earlier_answers(self, task_id: int, session: Session | None = None
                        ) -> list[tuple[AnswerRow, Path | None]]:
        """Every answer stored for a task over all its attempts, with its voice clip's
        file when there is one (filed, or still in the spool). Reads in `session` when
        given (the caller's transaction), else in one of its own."""
        if session is None:
            with self._db.session() as s:
                return self.earlier_answers(task_id, s)
        rows = session.execute(select(AnswerRow, Recording.path)
                               .outerjoin(Recording, Recording.id == AnswerRow.recording_id)
                               .where(AnswerRow.task_id == task_id)
                               .order_by(AnswerRow.id)).all()
        out: list[tuple[AnswerRow, Path | None]] = []
        for row, path in rows:
            clip = self._recordings.root / path if path else (
                Path(row.clip_spool) if row.clip_spool else None)
            out.append((row, clip))
        return out

    def finish(self, attempt_id: AttemptId, summary: CallSummary,
               now: dt.datetime) -> FinishResult:
        """Close the attempt and decide the task's next state, all in one transaction.

        Safe to repeat after a failed commit (the caller retries). An attempt a reclaim
        already settled as unknown still gets its true outcome, its tickets and its
        opt-out; its task is then only closed if it is not claimed again."""
        filed: StoredRecording | None = None
        spooled: str | None = None
        with self._db.session() as s:
            attempt = s.get(CallAttempt, attempt_id, with_for_update=True)
            if attempt is None:
                raise LookupError(f"attempt {attempt_id} vanished")
            if attempt.status is AttemptStatus.ENDED:
                task_status = s.execute(select(FollowupTask.status).where(
                    FollowupTask.id == attempt.task_id)).scalar_one()
                return FinishResult(task_status)  # a retried finish that had committed
            task = s.get(FollowupTask, attempt.task_id, with_for_update=True)
            assert task is not None
            reclaimed = attempt.status is AttemptStatus.UNKNOWN
            counts = summary.dial.was_dialled or summary.dial.counts_without_dialling
            if counts and self._count(s, attempt.id, task.id, now):
                s.refresh(task)
            attempt.status = AttemptStatus.ENDED
            attempt.channel = summary.channel or attempt.channel
            attempt.uniqueid = summary.uniqueid or attempt.uniqueid
            attempt.linkedid = summary.linkedid or attempt.linkedid
            attempt.answered_at = attempt.answered_at or summary.answered_at
            attempt.dial_outcome = summary.dial
            attempt.script_outcome = summary.script
            attempt.hangup_cause = summary.hangup_cause
            if summary.amd is not None:
                attempt.amd_status = summary.amd.status
                attempt.amd_cause = summary.amd.cause or None
            attempt.ended_at = now
            attempt.agent = summary.agent
            attempt.trunk = summary.trunk or attempt.trunk
            attempt.server = summary.server or attempt.server
            attempt.voicemail_left = summary.voicemail_left
            attempt.talk_time_s = summary.talk_time_s
            attempt.error = summary.error if not reclaimed else \
                "; ".join(x for x in ("settled after a reclaim", summary.error) if x)
            if summary.recording is not None and summary.recording.exists():
                try:
                    with s.begin_nested():
                        filed = self._recordings.file_path(
                            s, summary.recording, kind=RecordingKind.CALL,
                            attempt_id=attempt.id, department_id=attempt.department_id)
                except OSError as exc:
                    spooled = f"{type(exc).__name__}: {exc.strerror or exc}"
                    attempt.recording_spool = str(summary.recording)
                    log.error("attempt %s: call recording kept in the spool: %s",
                              attempt_id, spooled)
            if spooled is None:
                # a voice clip spooled while the folder failed for a moment, the call's own
                # recording filed once it had room: the campaign must still sweep the clip
                clips = s.execute(select(func.count()).select_from(AnswerRow).where(
                    AnswerRow.attempt_id == attempt_id,
                    AnswerRow.clip_spool.is_not(None))).scalar_one()
                if clips:
                    spooled = f"{clips} answer clip(s) kept in the spool"
            decision = self._policy.decide(dial=summary.dial, script=summary.script,
                                           attempts_after=task.attempts,
                                           max_attempts=task.max_attempts, now=now)
            outcome = summary.script.value if summary.script else summary.dial.value
            owned = task.status is TaskStatus.CLAIMED and not reclaimed
            if owned or (reclaimed and task.status is TaskStatus.PENDING
                         and decision.status is not TaskStatus.PENDING):
                self._close_task(s, task, decision.status, decision.next_attempt_at, now,
                                 outcome=outcome)
            requests = list(summary.tickets)
            if decision.ticket is not None and (owned or reclaimed):
                requests.append(TicketRequest(decision.ticket, None, decision.reason))
            for req in requests:
                self._ticket(s, task, attempt_id, req, now)
            if summary.opted_out:
                s.execute(update(Patient).where(Patient.id == task.patient_id)
                          .values(opt_out_phone=True, plan_dirty=True))
            status = task.status
        if filed is not None and summary.recording is not None:
            self._recordings.discard_source(summary.recording, filed)
        return FinishResult(status, len(requests), spooled)

    def complete_without_call(self, task: ClaimedTask, now: dt.datetime) -> None:
        """Every question was answered on earlier calls (one cut off after its last
        answer): close the task as completed instead of calling the patient again."""
        with self._db.session() as s:
            row = s.get(FollowupTask, task.task_id, with_for_update=True)
            if row is None or row.status is not TaskStatus.CLAIMED:
                return
            self._close_task(s, row, TaskStatus.DONE, None, now,
                             outcome=ScriptOutcome.COMPLETED.value)

    @staticmethod
    def _close_task(s: Session, task: FollowupTask, status: TaskStatus,
                    next_at: dt.datetime | None, now: dt.datetime, outcome: str) -> None:
        close_task(s, task, status, next_at, now, outcome)

    def _ticket(self, s: Session, task: FollowupTask, attempt_id: int | None,
                req: TicketRequest, now: dt.datetime) -> None:
        add_ticket(s, task, attempt_id, req, now, self._response_times)

    def reconcile(self, now: dt.datetime, live_attempts: set[int], *,
                  all_claims_are_dead: bool, grace: dt.timedelta = dt.timedelta(0)) -> int:
        """Settle what a dead dialer left behind. Returns the number of attempts settled.

        `live_attempts`: attempts whose calls are still up (this dialer's own, or the
        channels Asterisk still has); they are left alone. `all_claims_are_dead`: true under
        SQLite's single dialer at start (we hold the lock, so every claim belongs to a dead
        process); otherwise only claims whose lease expired more than `grace` ago are
        taken back. Rows are locked (PostgreSQL) and re-checked, so an attempt or task
        another dialer just finished is never touched.
        """
        settled = 0
        cutoff = now - grace
        with self._db.session() as s:
            q = (select(CallAttempt, FollowupTask)
                 .join(FollowupTask, FollowupTask.id == CallAttempt.task_id)
                 .where(CallAttempt.status.in_(LIVE)))
            if not all_claims_are_dead:
                q = q.where(FollowupTask.status == TaskStatus.CLAIMED,
                            FollowupTask.lease_expires_at.is_not(None),
                            FollowupTask.lease_expires_at <= cutoff)
            if self._db.dialect == "postgresql":
                q = q.with_for_update(skip_locked=True)
            for attempt, task in s.execute(q).all():
                if attempt.id in live_attempts:
                    continue
                attempt.status = AttemptStatus.UNKNOWN
                attempt.ended_at = now
                attempt.error = "dialer stopped during the call"
                # its fate is unknown: the phone may well have rung, so it counts
                if self._count(s, attempt.id, task.id, now):
                    s.refresh(task)
                answered = attempt.answered_at is not None
                decision = self._policy.decide(
                    dial=DialOutcome.ANSWERED if answered else None,
                    script=ScriptOutcome.PARTIAL if answered else None,
                    attempts_after=task.attempts, max_attempts=task.max_attempts, now=now)
                if task.status is TaskStatus.CLAIMED:
                    self._close_task(s, task, decision.status, decision.next_attempt_at, now,
                                     outcome=RetryKey.UNKNOWN.value)
                    if decision.ticket is not None:
                        self._ticket(s, task, attempt.id,
                                     TicketRequest(decision.ticket, None, decision.reason), now)
                settled += 1
            # claims with no live attempt at all (died between claim and begin)
            q2 = select(FollowupTask).where(FollowupTask.status == TaskStatus.CLAIMED)
            if not all_claims_are_dead:
                q2 = q2.where(FollowupTask.lease_expires_at <= cutoff)
            if self._db.dialect == "postgresql":
                q2 = q2.with_for_update(skip_locked=True)
            for task in s.execute(q2).scalars():
                live = s.execute(select(CallAttempt.id).where(
                    CallAttempt.task_id == task.id, CallAttempt.status.in_(LIVE))).first()
                if live is None:
                    task.status = TaskStatus.PENDING
                    task.lease_owner = None
                    task.lease_expires_at = None
                    task.updated_at = now
        return settled
