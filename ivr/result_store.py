"""The store side of a script's result, shared by every channel that runs the interpreter.

A call (the dialer's `AttemptLog`) and the patient's web questionnaire (`patient_web`) write
a result the same way: an `answers` row per answer, a `tickets` row per `TicketRequest`
(priority and due time from `core.tickets`), and the task closed with the tasks merged into
it. Each function works inside the caller's session and transaction; none commits.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Table, bindparam, update
from sqlalchemy.orm import Session

from core.enums import TaskStatus, TicketStatus
from core.store.models import Answer as AnswerRow
from core.store.models import FollowupTask, Ticket
from core.tickets import ResponseTimes, ticket_priority
from ivr.results import Answer, TicketRequest

TASKS: Table = FollowupTask.__table__  # type: ignore[assignment]
_CLOSE_RIDERS = (
    update(TASKS)
    .where(TASKS.c.merged_into_id == bindparam("r_id"), TASKS.c.status == TaskStatus.MERGED)
    .values(status=bindparam("r_status"), outcome=bindparam("r_outcome"),
            updated_at=bindparam("r_now"), closed_at=bindparam("r_now")))


def answer_row(answer: Answer, *, attempt_id: int, task_id: int, now: dt.datetime,
               clip_spool: str | None = None) -> AnswerRow:
    """The `answers` row for `answer` (not added to any session)."""
    return AnswerRow(attempt_id=attempt_id, task_id=task_id,
                     script_id=answer.script_id, script_version=answer.script_version,
                     question_id=answer.question_id, kind=answer.kind,
                     source=answer.source, value=answer.value,
                     transcript=answer.transcript, confidence=answer.confidence,
                     needs_review=answer.needs_review, note=answer.note,
                     red_flag=answer.red_flag, offset_ms=answer.offset_ms,
                     clip_spool=clip_spool, created_at=now)


def add_ticket(s: Session, task: FollowupTask, attempt_id: int | None, req: TicketRequest,
               now: dt.datetime, response_times: ResponseTimes) -> Ticket:
    """Raise the ticket `req` asks for, on the task's patient and department."""
    ticket = Ticket(task_id=task.id, attempt_id=attempt_id, patient_id=task.patient_id,
                    department_id=task.department_id, reason=req.reason,
                    severity=req.severity, priority=ticket_priority(req.reason),
                    status=TicketStatus.OPEN, summary=req.summary[:512], created_at=now,
                    due_at=response_times.due(req.reason, req.severity, now))
    s.add(ticket)
    return ticket


def close_task(s: Session, task: FollowupTask, status: TaskStatus, next_at: dt.datetime | None,
               now: dt.datetime, outcome: str) -> None:
    """Put `task` in `status` (PENDING: to be tried again at `next_at`) and release its
    claim; the tasks merged into it end with it when it ends for good."""
    task.status = status
    task.outcome = outcome
    task.lease_owner = None
    task.lease_expires_at = None
    task.updated_at = now
    if next_at is not None:
        task.next_attempt_at = next_at
    if status is not TaskStatus.PENDING:
        task.closed_at = now
    # merged tasks (riders) share the call: when it ends for good they end with it, in
    # the same state; while it will be retried they stay merged
    if status is not TaskStatus.PENDING:
        s.execute(_CLOSE_RIDERS, {"r_id": task.id, "r_status": status,
                                  "r_outcome": outcome, "r_now": now})
