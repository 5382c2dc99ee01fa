"""Today's figures by department: due, dialled, answered, completed, red flags, open tickets.

Each figure is one grouped query over an index range (today's tasks by due date, today's
attempts by creation time), filtered by the principal's departments.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from console.access import Principal
from console.periods import ID_CHUNK, chunked, day_range
from core.enums import DialOutcome, ScriptOutcome, TaskStatus, TicketStatus
from core.store.models import Answer, CallAttempt, Department, FollowupTask, Ticket


@dataclass(frozen=True, slots=True)
class DepartmentDay:
    department_id: int
    code: str
    name: str
    name_en: str
    due: int
    dialled: int
    answered: int
    completed: int
    red_flags: int
    open_tickets: int


@dataclass(frozen=True, slots=True)
class Dashboard:
    day: dt.date
    rows: tuple[DepartmentDay, ...]

    def total(self, attr: str) -> int:
        return sum(int(getattr(r, attr)) for r in self.rows)


def dashboard(session: Session, who: Principal, day: dt.date, tz: str) -> Dashboard:
    start, end = day_range(day, tz)
    counts: dict[int, dict[str, int]] = {}

    def put(dept: int, key: str, value: int) -> None:
        counts.setdefault(dept, {})[key] = int(value or 0)

    due = session.execute(
        select(FollowupTask.department_id, func.count())
        .where(FollowupTask.due_date == day,
               FollowupTask.status.not_in([TaskStatus.CANCELLED, TaskStatus.MERGED]),
               who.scope(FollowupTask.department_id))
        .group_by(FollowupTask.department_id))
    for dept, n in due:
        put(dept, "due", n)
    attempts = session.execute(
        select(CallAttempt.department_id,
               func.sum(case((CallAttempt.dialled.is_(True), 1), else_=0)),
               func.sum(case((CallAttempt.dial_outcome == DialOutcome.ANSWERED, 1), else_=0)),
               func.sum(case((CallAttempt.script_outcome == ScriptOutcome.COMPLETED, 1),
                             else_=0)))
        .where(CallAttempt.created_at >= start, CallAttempt.created_at < end,
               who.scope(CallAttempt.department_id))
        .group_by(CallAttempt.department_id))
    for dept, dialled, answered, completed in attempts:
        put(dept, "dialled", dialled)
        put(dept, "answered", answered)
        put(dept, "completed", completed)
    # Today's attempts first, then their answers by attempt id: one join would let the
    # planner scan every answer ever given.
    dept_of: dict[int, int] = {aid: dept for aid, dept in session.execute(
        select(CallAttempt.id, CallAttempt.department_id)
        .where(CallAttempt.created_at >= start, CallAttempt.created_at < end,
               CallAttempt.dial_outcome == DialOutcome.ANSWERED,
               who.scope(CallAttempt.department_id)))}
    for chunk in chunked(list(dept_of), ID_CHUNK):
        for attempt_id, n in session.execute(
                select(Answer.attempt_id, func.count())
                .where(Answer.attempt_id.in_(chunk), Answer.red_flag.is_not(None))
                .group_by(Answer.attempt_id)):
            dept = dept_of[attempt_id]
            counts.setdefault(dept, {})["red_flags"] = \
                counts.get(dept, {}).get("red_flags", 0) + int(n)
    tickets = session.execute(
        select(Ticket.department_id, func.count())
        .where(Ticket.status.in_([TicketStatus.OPEN, TicketStatus.CLAIMED]),
               who.scope(Ticket.department_id))
        .group_by(Ticket.department_id))
    for dept, n in tickets:
        put(dept, "open_tickets", n)
    depts = session.execute(select(Department).where(who.scope(Department.id))
                            .order_by(Department.code)).scalars()
    rows = []
    for d in depts:
        c = counts.get(d.id, {})
        rows.append(DepartmentDay(d.id, d.code, d.name, d.name_en, c.get("due", 0),
                                  c.get("dialled", 0), c.get("answered", 0),
                                  c.get("completed", 0), c.get("red_flags", 0),
                                  c.get("open_tickets", 0)))
    return Dashboard(day, tuple(rows))
