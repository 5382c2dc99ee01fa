"""The agents' worklist actions on a ticket in the caller's departments: claim, close with
a disposition, release and reassign, notes, click-to-call (the lists are
`console.ticket_lists`'). Each change is one transaction with its audit events.

Four dispositions act on the patient, in the close's own transaction:
- deceased: the patient is marked deceased and every pending call is cancelled;
- refused: the patient opts out of calls, every pending call is cancelled and the number
  goes on the do-not-call list at the patient's request;
- wrong_number: the number goes on the do-not-call list as not the patient's, every
  pending call is cancelled, and a new ticket asks for the number to be corrected in the
  HIS (a corrected number is not on the list);
- call_back: the ticket's call is due again at the promised time, which must lie in the
  future, inside the call's calling window and the hospital's calling hours.
A call a dialer has claimed (in progress) is never touched: the dialer re-checks the
patient before each later call.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from console.access import Permission, Principal, load_principal
from console.forms import Disposition, DispositionForm, FormError, NotesForm, ReassignForm
from console.ticket_lists import WORKING
from core import do_not_call
from core.audit import AuditLog
from core.calling_window import CallingRules, CallingWindow, Span, parse_calling_window, zone
from core.clock import Clock
from core.enums import (
    CancelReason,
    DncReason,
    DncSource,
    TaskStatus,
    TicketReason,
    TicketStatus,
)
from core.errors import NotFound, PermissionDenied
from core.store.models import FollowupTask, Patient, Ticket, User
from core.tickets import DEFAULT_RESPONSE_TIMES, ResponseTimes, ticket_priority


class ClickToCall(Protocol):
    """Rings the agent's phone, then the patient (Asterisk), or says why it cannot."""

    async def call(self, *, agent_extension: str, patient_phone: str, ticket_id: int) -> str:
        """Returns a message for the agent. Raises TelephonyError if the call failed."""
        ...


def saved_extension(session: Session, who: Principal) -> str:
    """The extension the caller last rang with click-to-call ("" before the first call)."""
    found = session.execute(select(User.extension).where(User.id == who.user_id)).scalar()
    return found or ""


class WorklistService:
    """Claims, closes (with the dispositions' effects), hands over and notes tickets.

    `rules` and `hospital_tz` are the dialer's calling hours and holidays and the
    hospital's time zone: a callback time must lie inside them (and the call's own
    window), and the form gives it in the hospital's local time."""

    def __init__(self, clock: Clock, audit: AuditLog, click_to_call: ClickToCall | None,
                 rules: CallingRules, hospital_tz: str,
                 response_times: ResponseTimes = DEFAULT_RESPONSE_TIMES) -> None:
        self._clock = clock
        self._audit = audit
        self._click = click_to_call
        self._rules = rules
        self._hospital_tz = hospital_tz
        self._response_times = response_times  # the due_at of a ticket this raises

    def ticket(self, session: Session, who: Principal, ticket_id: int) -> Ticket:
        """Raises NotFound outside the caller's departments."""
        t = session.execute(select(Ticket).where(Ticket.id == ticket_id,
                                                 who.scope(Ticket.department_id))
                            .with_for_update()).scalar_one_or_none()
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
        """Close a ticket the caller claimed, with its disposition's effect on the patient
        or the call (see the module's docstring), each audited.

        Raises NotFound outside the caller's departments, PermissionDenied when another
        user claimed it, and FormError (nothing stored) when it is not claimed, when a
        wrong number meets a patient with no number, or when a callback is impossible: no
        call behind the ticket, the call in progress, or the time in the past or outside
        the calling hours (`values["window"]` shows the hours it must lie in).
        """
        t = self.ticket(session, who, ticket_id)
        if t.status is not TicketStatus.CLAIMED:
            raise FormError("ticket", "claim_first")
        if t.assigned_user_id != who.user_id:
            raise PermissionDenied(f"ticket {ticket_id} is claimed by another user")
        now = self._clock.now()
        if form.disposition is Disposition.DECEASED:
            self._deceased(session, who, t, now)
        elif form.disposition is Disposition.REFUSED:
            self._refused(session, who, t, now)
        elif form.disposition is Disposition.WRONG_NUMBER:
            self._wrong_number(session, who, t, now)
        elif form.disposition is Disposition.CALL_BACK:
            assert form.callback_at is not None  # DispositionForm requires it
            self._call_back(session, who, t, form.callback_at, now)
        t.status = TicketStatus.CLOSED
        t.disposition = form.disposition.value
        if form.notes:
            t.notes = _append_note(t.notes, who.username, self._local(now), form.notes)
        t.closed_at = now
        self._audit.append(session, who.actor, "ticket.close", "ticket", ticket_id,
                           {"disposition": form.disposition.value})

    def _deceased(self, session: Session, who: Principal, t: Ticket, now: dt.datetime) -> None:
        patient = _patient(session, t)
        patient.deceased = True
        cancelled = _cancel_pending(session, patient.id, CancelReason.DECEASED, now)
        self._audit.append(session, who.actor, "patient.deceased", "patient", patient.id,
                           {"ticket_id": t.id, "cancelled_tasks": cancelled})

    def _refused(self, session: Session, who: Principal, t: Ticket, now: dt.datetime) -> None:
        patient = _patient(session, t)
        patient.opt_out_phone = True
        cancelled = _cancel_pending(session, patient.id, CancelReason.OPTED_OUT, now)
        entry = None
        if patient.phone:
            entry = do_not_call.add(session, self._audit, phone=patient.phone,
                                    reason=DncReason.PATIENT_REQUEST, source=DncSource.TICKET,
                                    actor=who.actor, now=now, note=f"#{t.id}",
                                    patient_id=patient.id).id
        self._audit.append(session, who.actor, "patient.opt_out", "patient", patient.id,
                           {"ticket_id": t.id, "cancelled_tasks": cancelled,
                            "dnc_entry": entry})

    def _wrong_number(self, session: Session, who: Principal, t: Ticket,
                      now: dt.datetime) -> None:
        patient = _patient(session, t)
        if not patient.phone:
            raise FormError("ticket", "no_phone")
        entry = do_not_call.add(session, self._audit, phone=patient.phone,
                                reason=DncReason.WRONG_NUMBER, source=DncSource.TICKET,
                                actor=who.actor, now=now, note=f"#{t.id}",
                                patient_id=patient.id)
        cancelled = _cancel_pending(session, patient.id, CancelReason.WRONG_NUMBER, now)
        fix = _open_ticket(session, patient.id, TicketReason.INVALID_NUMBER)
        if fix is None:
            reason = TicketReason.INVALID_NUMBER
            fix = Ticket(task_id=t.task_id, patient_id=patient.id,
                         department_id=t.department_id, reason=reason,
                         priority=ticket_priority(reason), status=TicketStatus.OPEN,
                         summary=patient.phone, created_at=now,
                         due_at=self._response_times.due(reason, None, now))
            session.add(fix)
            session.flush()
        self._audit.append(session, who.actor, "patient.wrong_number", "patient", patient.id,
                           {"ticket_id": t.id, "cancelled_tasks": cancelled,
                            "dnc_entry": entry.id, "fix_ticket": fix.id})

    def _call_back(self, session: Session, who: Principal, t: Ticket, local: dt.datetime,
                   now: dt.datetime) -> None:
        task = session.get(FollowupTask, t.task_id, with_for_update=True) \
            if t.task_id is not None else None
        if task is None:
            raise FormError("disposition", "no_call")
        if task.status is TaskStatus.CLAIMED:
            raise FormError("disposition", "in_call")
        at = local.replace(tzinfo=zone(self._hospital_tz)).astimezone(dt.UTC)
        window = parse_calling_window(task.calling_window)
        if at <= now or not self._rules.allowed(window, task.timezone, at, self._hospital_tz):
            raise FormError("callback_at", "outside_window",
                            window=self._shown_window(window, task.timezone))
        task.status = TaskStatus.PENDING
        task.cancel_reason = None
        task.next_attempt_at = task.callback_at = at
        task.max_attempts = max(task.max_attempts, task.attempts + 1)
        task.lease_owner = task.lease_expires_at = task.closed_at = None
        task.updated_at = now
        self._audit.append(session, who.actor, "task.callback", "task", task.id,
                           {"ticket_id": t.id, "callback_at": at.isoformat(),
                            "max_attempts": task.max_attempts})

    def _local(self, instant: dt.datetime) -> dt.datetime:
        return instant.astimezone(zone(self._hospital_tz))

    def _shown_window(self, window: CallingWindow, timezone: str) -> str:
        """The hours a callback may take, as a person reads them: the call's window within
        the hospital's hours ("09:00-12:00,14:00-18:00"); both, when the zones differ."""
        hours = self._rules.hospital_hours
        if timezone != self._hospital_tz:
            return f"{window} ({timezone}), {hours} ({self._hospital_tz})"
        spans = [Span(max(a.start, b.start), min(a.end, b.end))
                 for a in window.spans for b in hours.spans
                 if min(a.end, b.end) > max(a.start, b.start)]
        return CallingWindow(tuple(spans)).format() if spans else "-"

    def release(self, session: Session, who: Principal, ticket_id: int) -> None:
        """Give a claimed ticket back to the team (open). The caller's own, or anyone's
        with Permission.ASSIGN in its department; audited with whom it was taken from.

        Raises NotFound, PermissionDenied, and FormError when it is not claimed."""
        t = self.ticket(session, who, ticket_id)
        if t.status is not TicketStatus.CLAIMED:
            raise FormError("ticket", "not_claimed")
        _may_hand_over(who, t)
        previous = _username(session, t.assigned_user_id)
        t.status = TicketStatus.OPEN
        t.assigned_user_id = None
        t.claimed_at = None
        self._audit.append(session, who.actor, "ticket.release", "ticket", ticket_id,
                           {"from_user": previous})

    def reassign(self, session: Session, who: Principal, ticket_id: int,
                 form: ReassignForm) -> None:
        """Hand an open or claimed ticket to another active user who may work tickets in
        its department; it is then claimed by them ("my tickets"). Audited with from/to.

        Raises NotFound, PermissionDenied (someone else's ticket without Permission.ASSIGN
        there), and FormError (closed, the user may not take it, or already has it)."""
        t = self.ticket(session, who, ticket_id)
        if t.status is TicketStatus.CLOSED:
            raise FormError("ticket", "closed")
        _may_hand_over(who, t)
        now = self._clock.now()
        target = load_principal(session, form.user_id, now)
        if target is None or not target.reaches(Permission.WORKLIST, t.department_id):
            raise FormError("user_id", "not_eligible")
        if t.status is TicketStatus.CLAIMED and t.assigned_user_id == target.user_id:
            raise FormError("user_id", "already_assigned")
        previous = _username(session, t.assigned_user_id)
        t.status = TicketStatus.CLAIMED
        t.assigned_user_id = target.user_id
        t.claimed_at = now
        self._audit.append(session, who.actor, "ticket.reassign", "ticket", ticket_id,
                           {"from_user": previous, "to_user": target.username})

    def add_note(self, session: Session, who: Principal, ticket_id: int,
                 form: NotesForm) -> None:
        t = self.ticket(session, who, ticket_id)
        if t.status is TicketStatus.CLOSED:
            raise FormError("ticket", "closed")
        t.notes = _append_note(t.notes, who.username, self._local(self._clock.now()),
                               form.notes)
        self._audit.append(session, who.actor, "ticket.note", "ticket", ticket_id, {})

    def request_call(self, session: Session, who: Principal, ticket_id: int,
                     extension: str) -> str:
        """Record the click-to-call request (committed before any network call), remember
        `extension` as the caller's for next time, and return the patient's number."""
        t = self.ticket(session, who, ticket_id)
        patient = session.get(Patient, t.patient_id)
        if patient is None or not patient.phone:
            raise FormError("ticket", "no_phone")
        session.execute(update(User).where(User.id == who.user_id)
                        .values(extension=extension))
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


def _may_hand_over(who: Principal, t: Ticket) -> None:
    """Raises PermissionDenied unless the ticket is the caller's own claim or the caller
    holds Permission.ASSIGN in its department."""
    mine = t.status is TicketStatus.CLAIMED and t.assigned_user_id == who.user_id
    if not mine and not who.reaches(Permission.ASSIGN, t.department_id):
        raise PermissionDenied(f"{who.username} may not hand over ticket {t.id}")


def _patient(session: Session, t: Ticket) -> Patient:
    patient = session.get(Patient, t.patient_id, with_for_update=True)
    if patient is None:
        raise NotFound(f"patient {t.patient_id} not found")
    return patient


def _cancel_pending(session: Session, patient_id: int, reason: CancelReason,
                    now: dt.datetime) -> list[int]:
    """Cancel the patient's pending calls (claimed ones, in progress, are left alone);
    their ids."""
    done = session.execute(update(FollowupTask)
                           .where(FollowupTask.patient_id == patient_id,
                                  FollowupTask.status == TaskStatus.PENDING)
                           .values(status=TaskStatus.CANCELLED, cancel_reason=reason,
                                   closed_at=now, updated_at=now)
                           .returning(FollowupTask.id))
    return sorted(done.scalars())


def _open_ticket(session: Session, patient_id: int, reason: TicketReason) -> Ticket | None:
    """The patient's ticket for `reason` still being worked, if any."""
    return session.execute(select(Ticket).where(Ticket.patient_id == patient_id,
                                                Ticket.reason == reason,
                                                Ticket.status.in_(sorted(WORKING)))
                           ).scalars().first()


def _username(session: Session, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    found: str | None = session.execute(select(User.username).where(User.id == user_id)
                                        ).scalar()
    return found


def _append_note(existing: str | None, user: str, local: dt.datetime, note: str) -> str:
    """`note` as a new line stamped with the hospital's local time and the writer."""
    line = f"[{local.strftime('%Y-%m-%d %H:%M')} {user}] {note}"
    return f"{existing}\n{line}" if existing else line
