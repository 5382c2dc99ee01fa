"""The agents' worklist: open tickets in the caller's departments, claim, close, notes,
click-to-call. Each change is one transaction with its audit event."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from console.access import Principal
from console.calls import matching_patients
from console.forms import DispositionForm, FormError, NotesForm
from core.audit import AuditLog
from core.clock import Clock
from core.enums import Severity, TicketReason, TicketStatus
from core.errors import NotFound, PermissionDenied
from core.store.models import Department, Patient, Ticket, User


class ClickToCall(Protocol):
    """Rings the agent's phone, then the patient (Asterisk), or says why it cannot."""

    async def call(self, *, agent_extension: str, patient_phone: str, ticket_id: int) -> str:
        """Returns a message for the agent. Raises TelephonyError if the call failed."""
        ...


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
    assignee: str
    created_at: dt.datetime
    attempt_id: int | None
    notes: str
    department_name: str = ""
    department_name_en: str = ""


# Most severe first (`Severity.rank`), then the lower priority number (`core.tickets`: a
# red flag before "asked for a person"), then the oldest.
_SEVERITY_ORDER = case({sev: -sev.rank for sev in Severity}, value=Ticket.severity, else_=1)


def open_tickets(session: Session, who: Principal, reason: TicketReason | None = None,
                 limit: int = 200, q: str = "") -> list[TicketRow]:
    """Open and claimed tickets in the caller's departments, most urgent first; `q` finds
    a patient's as the call search does (name, MRN or its start, phone in any format)."""
    stmt = (select(Ticket, Patient.name, Patient.phone, Department.code, User.username,
                   Department.name, Department.name_en)
            .join(Patient, Patient.id == Ticket.patient_id)
            .join(Department, Department.id == Ticket.department_id)
            .outerjoin(User, User.id == Ticket.assigned_user_id)
            .where(Ticket.status.in_([TicketStatus.OPEN, TicketStatus.CLAIMED]),
                   who.scope(Ticket.department_id)))
    if reason is not None:
        stmt = stmt.where(Ticket.reason == reason)
    if q.strip():
        stmt = stmt.where(Ticket.patient_id.in_(matching_patients(session, q)))
    rows = session.execute(stmt.order_by(_SEVERITY_ORDER, Ticket.priority.asc(),
                                         Ticket.created_at).limit(limit)).all()
    return [TicketRow(t.id, t.reason.value, t.severity.value if t.severity else "", t.priority,
                      t.status.value, t.summary, t.patient_id, name, phone or "", code,
                      user or "", t.created_at, t.attempt_id, t.notes or "", dept, dept_en or "")
            for t, name, phone, code, user, dept, dept_en in rows]


class WorklistService:
    def __init__(self, clock: Clock, audit: AuditLog,
                 click_to_call: ClickToCall | None) -> None:
        self._clock = clock
        self._audit = audit
        self._click = click_to_call

    def ticket(self, session: Session, who: Principal, ticket_id: int) -> Ticket:
        """Raises NotFound outside the caller's departments."""
        t = session.execute(select(Ticket).where(Ticket.id == ticket_id,
                                                 who.scope(Ticket.department_id))
                            ).scalar_one_or_none()
        if t is None:
            raise NotFound(f"ticket {ticket_id} not found")
        return t

    def claim(self, session: Session, who: Principal, ticket_id: int) -> None:
        """Only an open ticket can be claimed; two agents racing: one wins, one is told."""
        self.ticket(session, who, ticket_id)
        now = self._clock.now()
        done = session.execute(update(Ticket).where(Ticket.id == ticket_id,
                                                    Ticket.status == TicketStatus.OPEN)
                               .values(status=TicketStatus.CLAIMED,
                                       assigned_user_id=who.user_id, claimed_at=now))
        if getattr(done, "rowcount", 0) != 1:
            raise FormError("ticket", "already_claimed")
        self._audit.append(session, who.actor, "ticket.claim", "ticket", ticket_id, {})

    def close(self, session: Session, who: Principal, ticket_id: int,
              form: DispositionForm) -> None:
        t = self.ticket(session, who, ticket_id)
        if t.status is not TicketStatus.CLAIMED:
            raise FormError("ticket", "claim_first")
        if t.assigned_user_id != who.user_id:
            raise PermissionDenied(f"ticket {ticket_id} is claimed by another user")
        t.status = TicketStatus.CLOSED
        t.disposition = form.disposition.value
        if form.notes:
            t.notes = _append_note(t.notes, who.username, self._clock.now(), form.notes)
        t.closed_at = self._clock.now()
        self._audit.append(session, who.actor, "ticket.close", "ticket", ticket_id,
                           {"disposition": form.disposition.value})

    def add_note(self, session: Session, who: Principal, ticket_id: int,
                 form: NotesForm) -> None:
        t = self.ticket(session, who, ticket_id)
        if t.status is TicketStatus.CLOSED:
            raise FormError("ticket", "closed")
        t.notes = _append_note(t.notes, who.username, self._clock.now(), form.notes)
        self._audit.append(session, who.actor, "ticket.note", "ticket", ticket_id, {})

    def request_call(self, session: Session, who: Principal, ticket_id: int,
                     extension: str) -> str:
        """Record the click-to-call request (committed before any network call) and
        return the patient's number to dial."""
        t = self.ticket(session, who, ticket_id)
        patient = session.get(Patient, t.patient_id)
        if patient is None or not patient.phone:
            raise FormError("ticket", "no_phone")
        self._audit.append(session, who.actor, "ticket.click_to_call", "ticket", ticket_id,
                           {"extension": extension})
        return patient.phone

    async def place_call(self, extension: str, phone: str, ticket_id: int) -> str:
        """Ring the agent, then the patient, outside any transaction. Raises
        TelephonyError when the telephony refused or could not be reached."""
        if self._click is None:
            return "click-to-call is not configured"
        return await self._click.call(agent_extension=extension, patient_phone=phone,
                                      ticket_id=ticket_id)

    def record_call(self, session: Session, who: Principal, ticket_id: int, extension: str,
                    problem: str | None) -> None:
        """Record how the click-to-call ended (placed, or the telephony's refusal)."""
        self._audit.append(session, who.actor, "ticket.click_to_call_result", "ticket",
                           ticket_id, {"extension": extension, "placed": problem is None,
                                       "problem": problem or ""})


def _append_note(existing: str | None, user: str, now: dt.datetime, note: str) -> str:
    line = f"[{now.strftime('%Y-%m-%d %H:%M')} {user}] {note}"
    return f"{existing}\n{line}" if existing else line
