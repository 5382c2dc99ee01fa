"""Writes what happens to a call as it happens, so a crash loses nothing.

The order is the crash-safety argument:
1. `begin` writes the attempt (status dialing, not yet dialled) BEFORE the call is placed;
2. `mark_dialled` when the network really dialled (the attempt counts from here);
3. answers are saved one by one as the patient gives them (`save_answer`);
4. `finish` writes the outcome, the task's next state, tickets, opt-out and the recording in
   one transaction and releases the claim.
On start, `reconcile` finds attempts left dialing/in_call by a dead process: those with no
live channel are marked unknown and the task goes back to the retry policy, resuming after
the answers already stored.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.enums import (
    AttemptStatus,
    DialOutcome,
    RecordingKind,
    ScriptOutcome,
    TaskStatus,
    TicketReason,
    TicketStatus,
)
from core.store.db import Database
from core.store.models import Answer as AnswerRow
from core.store.models import CallAttempt, FollowupTask, Patient, Recording, Ticket
from dialer.claims import ClaimedTask
from dialer.retry_policy import RetryPolicy
from ivr.results import Answer, TicketRequest
from recordings.store import RecordingStore

# Tickets raised by red flags jump the agents' queue.
TICKET_PRIORITY = {TicketReason.RED_FLAG: 1, TicketReason.ASKED_FOR_PERSON: 10,
                   TicketReason.IDENTITY_FAILED: 30, TicketReason.LOW_CONFIDENCE: 40,
                   TicketReason.INVALID_NUMBER: 40, TicketReason.ATTEMPTS_EXHAUSTED: 50}


@dataclass(frozen=True)
class CallSummary:
    """How one attempt ended, for `finish`."""

    dial: DialOutcome
    script: ScriptOutcome | None = None
    hangup_cause: int | None = None
    resume_from: str | None = None
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
    extra: dict[str, str] = field(default_factory=dict)


class AttemptLog:
    """The store side of placing a call."""

    def __init__(self, db: Database, policy: RetryPolicy, recordings: RecordingStore,
                 backend: str) -> None:
        self._db = db
        self._policy = policy
        self._recordings = recordings
        self.backend = backend

    def begin(self, task: ClaimedTask, now: dt.datetime) -> int:
        with self._db.session() as s:
            number = s.execute(select(func.count()).select_from(CallAttempt)
                               .where(CallAttempt.task_id == task.task_id)).scalar_one() + 1
            attempt = CallAttempt(task_id=task.task_id, patient_id=task.patient_id,
                                  department_id=task.department_id, number=number,
                                  status=AttemptStatus.DIALING, backend=self.backend,
                                  phone=task.phone, dialled=False, created_at=now,
                                  resume_from=task.resume_from)
            s.add(attempt)
            s.flush()
            return attempt.id

    def mark_dialled(self, attempt_id: int, now: dt.datetime, channel: str | None = None,
                     uniqueid: str | None = None, linkedid: str | None = None) -> None:
        with self._db.session() as s:
            attempt = s.get(CallAttempt, attempt_id)
            if attempt is None or attempt.dialled:
                return
            attempt.dialled = True
            attempt.channel = channel or attempt.channel
            attempt.uniqueid = uniqueid or attempt.uniqueid
            attempt.linkedid = linkedid or attempt.linkedid
            s.execute(update(FollowupTask).where(FollowupTask.id == attempt.task_id)
                      .values(attempts=FollowupTask.attempts + 1, updated_at=now))

    def mark_answered(self, attempt_id: int, now: dt.datetime) -> None:
        """The patient picked up (so the call was dialled: it counts from now)."""
        with self._db.session() as s:
            attempt = s.get(CallAttempt, attempt_id)
            if attempt is None:
                return
            attempt.status = AttemptStatus.IN_CALL
            attempt.answered_at = attempt.answered_at or now
            if not attempt.dialled:
                attempt.dialled = True
                s.execute(update(FollowupTask).where(FollowupTask.id == attempt.task_id)
                          .values(attempts=FollowupTask.attempts + 1, updated_at=now))

    def save_answer(self, attempt_id: int, answer: Answer, now: dt.datetime) -> None:
        """Store one answer now (a later hangup never loses it). Idempotent per question."""
        with self._db.session() as s:
            attempt = s.get(CallAttempt, attempt_id)
            if attempt is None:
                return
            exists = s.execute(select(AnswerRow.id).where(
                AnswerRow.attempt_id == attempt_id, AnswerRow.script_id == answer.script_id,
                AnswerRow.question_id == answer.question_id)).first()
            if exists is not None:
                return
            recording_id = None
            if answer.audio is not None and answer.audio.exists():
                recording_id = self._recordings.file_path(
                    s, answer.audio, kind=RecordingKind.ANSWER_CLIP, attempt_id=attempt_id,
                    department_id=attempt.department_id).id
            s.add(AnswerRow(attempt_id=attempt_id, task_id=attempt.task_id,
                         script_id=answer.script_id, script_version=answer.script_version,
                         question_id=answer.question_id, kind=answer.kind,
                         source=answer.source, value=answer.value,
                         transcript=answer.transcript, confidence=answer.confidence,
                         needs_review=answer.needs_review, note=answer.note,
                         red_flag=answer.red_flag, recording_id=recording_id,
                         offset_ms=answer.offset_ms, created_at=now))

    def earlier_answers(self, task_id: int) -> list[tuple[AnswerRow, Path | None]]:
        """Every answer stored for a task over all its attempts, with its voice clip's
        file when there is one (for resuming)."""
        with self._db.session() as s:
            rows = s.execute(select(AnswerRow, Recording.path)
                             .outerjoin(Recording, Recording.id == AnswerRow.recording_id)
                             .where(AnswerRow.task_id == task_id)
                             .order_by(AnswerRow.id)).all()
        return [(row, self._recordings.root / path if path else None) for row, path in rows]

    def finish(self, attempt_id: int, summary: CallSummary, now: dt.datetime) -> TaskStatus:
        """Close the attempt and decide the task's next state, all in one transaction."""
        with self._db.session() as s:
            attempt = s.get(CallAttempt, attempt_id)
            if attempt is None:
                raise LookupError(f"attempt {attempt_id} vanished")
            task = s.get(FollowupTask, attempt.task_id)
            assert task is not None
            dialled = attempt.dialled or summary.dial.was_dialled
            if dialled and not attempt.dialled:
                attempt.dialled = True
                task.attempts += 1
            attempt.status = AttemptStatus.ENDED
            attempt.channel = summary.channel or attempt.channel
            attempt.uniqueid = summary.uniqueid or attempt.uniqueid
            attempt.linkedid = summary.linkedid or attempt.linkedid
            attempt.answered_at = attempt.answered_at or summary.answered_at
            attempt.dial_outcome = summary.dial
            attempt.script_outcome = summary.script
            attempt.hangup_cause = summary.hangup_cause
            attempt.ended_at = now
            attempt.agent = summary.agent
            attempt.talk_time_s = summary.talk_time_s
            attempt.error = summary.error
            if summary.recording is not None and summary.recording.exists():
                self._recordings.file_path(s, summary.recording, kind=RecordingKind.CALL,
                                           attempt_id=attempt.id,
                                           department_id=attempt.department_id)
            decision = self._policy.decide(dial=summary.dial, script=summary.script,
                                           attempts_after=task.attempts,
                                           max_attempts=task.max_attempts, now=now)
            self._close_task(s, task, decision.status, decision.next_attempt_at, now,
                             outcome=summary.script.value if summary.script else
                             summary.dial.value, resume_from=summary.resume_from)
            tickets = list(summary.tickets)
            if decision.ticket is not None:
                tickets.append(TicketRequest(decision.ticket, None, decision.reason))
            for req in tickets:
                self._ticket(s, task, attempt_id, req, now)
            if summary.opted_out:
                s.execute(update(Patient).where(Patient.id == task.patient_id)
                          .values(opt_out_phone=True, plan_dirty=True))
            return decision.status

    def _close_task(self, s: Session, task: FollowupTask, status: TaskStatus,
                    next_at: dt.datetime | None, now: dt.datetime, outcome: str,
                    resume_from: str | None) -> None:
        task.status = status
        task.outcome = outcome
        task.lease_owner = None
        task.lease_expires_at = None
        task.updated_at = now
        if resume_from is not None or status is not TaskStatus.PENDING:
            task.resume_from = resume_from
        if next_at is not None:
            task.next_attempt_at = next_at
        if status is not TaskStatus.PENDING:
            task.closed_at = now
        # merged tasks (riders) share the call: when it ends for good they end with it, in
        # the same state; while it will be retried they stay merged
        if status is not TaskStatus.PENDING:
            s.execute(update(FollowupTask).where(FollowupTask.merged_into_id == task.id,
                                                 FollowupTask.status == TaskStatus.MERGED)
                      .values(status=status, outcome=outcome, updated_at=now, closed_at=now))

    @staticmethod
    def _ticket(s: Session, task: FollowupTask, attempt_id: int | None, req: TicketRequest,
                now: dt.datetime) -> None:
        s.add(Ticket(task_id=task.id, attempt_id=attempt_id, patient_id=task.patient_id,
                     department_id=task.department_id, reason=req.reason,
                     severity=req.severity, priority=TICKET_PRIORITY.get(req.reason, 50),
                     status=TicketStatus.OPEN, summary=req.summary[:512], created_at=now))

    def release_unplaced(self, task: ClaimedTask, now: dt.datetime) -> None:
        """Give a claimed task back untouched (shutdown before its call was placed)."""
        with self._db.session() as s:
            s.execute(update(FollowupTask).where(FollowupTask.id == task.task_id,
                                                 FollowupTask.status == TaskStatus.CLAIMED)
                      .values(status=TaskStatus.PENDING, lease_owner=None,
                              lease_expires_at=None, updated_at=now))

    def reconcile(self, now: dt.datetime, live_attempts: set[int], *,
                  all_claims_are_dead: bool) -> int:
        """Settle what a dead dialer left behind. Returns the number of attempts settled.

        `all_claims_are_dead`: true under SQLite's single dialer (we hold the lock, so every
        claim belongs to a dead process); with PostgreSQL only expired leases are taken back.
        """
        settled = 0
        with self._db.session() as s:
            stale = s.execute(select(CallAttempt).where(
                CallAttempt.status.in_([AttemptStatus.DIALING, AttemptStatus.IN_CALL]))
            ).scalars().all()
            for attempt in stale:
                if attempt.id in live_attempts:
                    continue
                task = s.get(FollowupTask, attempt.task_id)
                assert task is not None
                if not all_claims_are_dead and task.lease_expires_at is not None \
                        and task.lease_expires_at > now:
                    continue
                attempt.status = AttemptStatus.UNKNOWN
                attempt.ended_at = now
                attempt.error = "dialer stopped during the call"
                if not attempt.dialled:
                    # its fate is unknown: the phone may well have rung, so it counts
                    attempt.dialled = True
                    task.attempts += 1
                answered = attempt.answered_at is not None
                decision = self._policy.decide(
                    dial=DialOutcome.ANSWERED if answered else None,
                    script=ScriptOutcome.PARTIAL if answered else None,
                    attempts_after=task.attempts, max_attempts=task.max_attempts, now=now)
                if task.status is TaskStatus.CLAIMED:
                    self._close_task(s, task, decision.status, decision.next_attempt_at, now,
                                     outcome="unknown", resume_from=task.resume_from)
                    if decision.ticket is not None:
                        self._ticket(s, task, attempt.id,
                                     TicketRequest(decision.ticket, None, decision.reason), now)
                settled += 1
            # claims with no attempt at all (died between claim and begin)
            q = select(FollowupTask).where(FollowupTask.status == TaskStatus.CLAIMED)
            if not all_claims_are_dead:
                q = q.where(FollowupTask.lease_expires_at <= now)
            for task in s.execute(q).scalars():
                live = s.execute(select(CallAttempt.id).where(
                    CallAttempt.task_id == task.id,
                    CallAttempt.status.in_([AttemptStatus.DIALING, AttemptStatus.IN_CALL]))
                ).first()
                if live is None:
                    task.status = TaskStatus.PENDING
                    task.lease_owner = None
                    task.lease_expires_at = None
                    task.updated_at = now
        return settled
