"""The worklist's ticket lists: mine, the team's and the closed history, in the caller's
departments, most urgent first; and who a ticket may be handed to."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import ColumnElement, case, select
from sqlalchemy.orm import Session

from console.access import Permission, Principal, load_principal
from console.calls import matching_patients
from core.calling_window import zone
from core.enums import Severity, TicketReason, TicketStatus
from core.store.models import Department, Patient, Ticket, User
from core.tickets import response_due


class TicketView(StrEnum):
    """The worklist's tabs."""

    MINE = "mine"  # claimed by me
    TEAM = "team"  # open and claimed in my departments (the default)
    CLOSED = "closed"  # the history, searchable


WORKING = frozenset({TicketStatus.OPEN, TicketStatus.CLAIMED})


@dataclass(frozen=True, slots=True)
class TicketRow:
    id: int
    reason: str
    severity: str
    priority: int
    status: str
    summary: str
    patient_id: int
    patient_name: str
    phone: str
    department: str
    assignee: str  # the assignee's login name ("" when nobody claimed it)
    created_at: dt.datetime
    attempt_id: int | None
    notes: str
    department_name: str = ""
    department_name_en: str = ""
    department_id: int = 0
    assignee_name: str = ""  # the assignee's display name
    due_at: dt.datetime | None = None
    disposition: str = ""
    closed_at: dt.datetime | None = None

    def overdue(self, now: dt.datetime) -> bool:
        """Past its response time (its `due_at`, `core.tickets`) and still not closed."""
        return self.closed_at is None and self.due_at is not None and now > self.due_at

    def age(self, now: dt.datetime) -> tuple[int, str]:
        """How long it has been waiting (until `now`, or until it was closed), as a count
        and its unit: "min" under an hour, "h" under two days, else "d"."""
        minutes = max(0, int(((self.closed_at or now) - self.created_at).total_seconds() // 60))
        if minutes < 60:
            return minutes, "min"
        if minutes < 48 * 60:
            return minutes // 60, "h"
        return minutes // (24 * 60), "d"


@dataclass(frozen=True, slots=True)
class TicketQuery:
    """Which tickets to list (always inside the caller's departments)."""

    statuses: frozenset[TicketStatus] = WORKING
    assigned_to: int | None = None
    department_id: int | None = None
    reason: TicketReason | None = None
    q: str = ""  # a patient's name, MRN or phone, as the call search reads it
    closed_from: dt.datetime | None = None  # UTC, inclusive
    closed_before: dt.datetime | None = None  # UTC, exclusive
    limit: int = 200

    @classmethod
    def for_view(cls, view: TicketView, who: Principal, *, reason: TicketReason | None = None,
                 q: str = "", days: tuple[dt.date | None, dt.date | None] = (None, None),
                 timezone: str = "UTC") -> TicketQuery:
        """A tab's query; `days` (closed history only) are local dates in `timezone`, both
        included."""
        if view is TicketView.MINE:
            return cls(frozenset({TicketStatus.CLAIMED}), who.user_id, reason=reason, q=q)
        if view is TicketView.TEAM:
            return cls(reason=reason, q=q)
        first, last = days
        return cls(frozenset({TicketStatus.CLOSED}), reason=reason, q=q,
                   closed_from=_local_midnight(first, timezone),
                   closed_before=_local_midnight(last + dt.timedelta(days=1), timezone)
                   if last else None)


def _local_midnight(day: dt.date | None, timezone: str) -> dt.datetime | None:
    if day is None:
        return None
    return dt.datetime.combine(day, dt.time(0, 0), zone(timezone)).astimezone(dt.UTC)


# Most severe first (`Severity.rank`), then the lower priority number (`core.tickets`: a
# red flag before "asked for a person"), then the oldest.
_SEVERITY_ORDER = case({sev: -sev.rank for sev in Severity}, value=Ticket.severity, else_=1)


def _filters(session: Session, who: Principal, query: TicketQuery) -> list[ColumnElement[bool]]:
    where = [Ticket.status.in_(sorted(query.statuses)), who.scope(Ticket.department_id)]
    if query.assigned_to is not None:
        where.append(Ticket.assigned_user_id == query.assigned_to)
    if query.department_id is not None:
        where.append(Ticket.department_id == query.department_id)
    if query.reason is not None:
        where.append(Ticket.reason == query.reason)
    if query.q.strip():
        where.append(Ticket.patient_id.in_(matching_patients(session, query.q)))
    if query.closed_from is not None:
        where.append(Ticket.closed_at >= query.closed_from)
    if query.closed_before is not None:
        where.append(Ticket.closed_at < query.closed_before)
    return where


def list_tickets(session: Session, who: Principal, query: TicketQuery) -> list[TicketRow]:
    """Tickets in the caller's departments matching `query`: working ones most urgent
    first, closed ones newest first."""
    stmt = (select(Ticket, Patient.name, Patient.phone, Department.code, User.username,
                   Department.name, Department.name_en, User.display_name)
            .join(Patient, Patient.id == Ticket.patient_id)
            .join(Department, Department.id == Ticket.department_id)
            .outerjoin(User, User.id == Ticket.assigned_user_id)
            .where(*_filters(session, who, query)))
    if TicketStatus.CLOSED in query.statuses:
        stmt = stmt.order_by(Ticket.closed_at.desc(), Ticket.id.desc())
    else:
        stmt = stmt.order_by(_SEVERITY_ORDER, Ticket.priority.asc(), Ticket.created_at)
    rows = session.execute(stmt.limit(query.limit)).all()
    return [TicketRow(
        t.id, t.reason.value, t.severity.value if t.severity else "", t.priority,
        t.status.value, t.summary, t.patient_id, name, phone or "", code, user or "",
        t.created_at, t.attempt_id, t.notes or "", dept, dept_en or "", t.department_id,
        display or "", t.due_at or response_due(t.reason, t.severity, t.created_at),
        t.disposition or "", t.closed_at)
        for t, name, phone, code, user, dept, dept_en, display in rows]


def open_tickets(session: Session, who: Principal, reason: TicketReason | None = None,
                 limit: int = 200, q: str = "") -> list[TicketRow]:
    """Open and claimed tickets in the caller's departments, most urgent first; `q` finds
    a patient's as the call search does (name, MRN or its start, phone in any format)."""
    return list_tickets(session, who, TicketQuery(reason=reason, q=q, limit=limit))


def assignees(session: Session, department_ids: set[int], now: dt.datetime
              ) -> dict[int, list[tuple[int, str]]]:
    """For each department, the active users who may work its tickets (id, shown name),
    by name: whom a ticket there may be handed to."""
    users = session.execute(select(User.id, User.display_name, User.username)
                            .where(User.active.is_(True)).order_by(User.display_name)).all()
    able = [(uid, f"{display} ({username})", load_principal(session, uid, now))
            for uid, display, username in users] if department_ids else []
    return {dept: [(uid, shown) for uid, shown, p in able
                   if p is not None and p.reaches(Permission.WORKLIST, dept)]
            for dept in department_ids}
