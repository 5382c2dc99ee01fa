"""What a message from a patient does: a stop word opts them out at once; anything else
becomes a ticket for a person; a number no patient has is kept and nothing is done.

The stop words are `TD`, `退订` and `STOP`, compared after Unicode NFKC (so full-width
`ＴＤ` counts), trimming and case folding, and ignoring trailing punctuation people type
("退订。", "stop!"). An opt-out stops both calls and messages (the dialer and the sender
both read the patient's flags at dial and send time) and cancels nothing else: tasks
already done stay done.
"""

from __future__ import annotations

import datetime as dt
import unicodedata

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from core.audit import AuditLog
from core.enums import InboundAction, TicketReason, TicketStatus
from core.phones import to_e164
from core.store.models import Encounter, Patient, SmsInbound, SmsMessage, Ticket
from core.tickets import ResponseTimes, ticket_priority
from messaging.gateway import InboundSms

STOP_WORDS = frozenset({"td", "退订", "stop"})
_TRAILING = " \t\r\n.。!！?？,，;；~～"
ACTOR = "sms:inbound"
SUMMARY_MAX = 200


def is_stop(body: str) -> bool:
    """Whether `body` asks to stop messages (TD / 退订 / STOP, any width or case)."""
    return unicodedata.normalize("NFKC", body).strip().rstrip(_TRAILING).casefold() \
        in STOP_WORDS


def _patients(session: Session, phone: str | None) -> list[Patient]:
    if phone is None:
        return []
    return list(session.execute(select(Patient).where(
        or_(Patient.phone == phone, Patient.phone_alt == phone),
        Patient.merged_into_id.is_(None)).order_by(Patient.id)).scalars())


def _department(session: Session, patient: Patient) -> int | None:
    """Where a reply goes: the department of the last message we sent the patient, else of
    their last visit."""
    sent = session.execute(select(SmsMessage.department_id).where(
        SmsMessage.patient_id == patient.id, SmsMessage.department_id.is_not(None))
        .order_by(SmsMessage.created_at.desc()).limit(1)).scalar_one_or_none()
    if sent is not None:
        return sent
    return session.execute(select(Encounter.department_id).where(
        Encounter.patient_id == patient.id).order_by(Encounter.id.desc()).limit(1)
    ).scalar_one_or_none()


def handle(session: Session, audit: AuditLog, gateway: str, message: InboundSms,
           now: dt.datetime, region: str, response_times: ResponseTimes) -> SmsInbound:
    """Record `message` and act on it, in the caller's transaction."""
    phone = to_e164(message.sender, region)
    patients = _patients(session, phone)
    row = SmsInbound(gateway=gateway, phone=message.sender[:32], body=message.body,
                     patient_id=patients[0].id if patients else None,
                     action=InboundAction.UNKNOWN_SENDER, received_at=now)
    session.add(row)
    if not patients:
        session.flush()
        return row
    if is_stop(message.body):
        row.action = InboundAction.OPTED_OUT
        ids = [p.id for p in patients]
        session.execute(update(Patient).where(Patient.id.in_(ids))
                        .values(opt_out_sms=True, opt_out_phone=True))
        session.flush()
        for patient_id in ids:
            audit.append(session, ACTOR, "patient.opt_out", "patient", patient_id,
                         {"channel": "sms", "inbound_id": row.id})
        return row
    patient = patients[0]
    department = _department(session, patient)
    if department is None:
        session.flush()
        return row
    ticket = Ticket(patient_id=patient.id, department_id=department,
                    reason=TicketReason.SMS_REPLY, priority=ticket_priority(
                        TicketReason.SMS_REPLY), status=TicketStatus.OPEN,
                    summary=message.body[:SUMMARY_MAX], created_at=now,
                    due_at=response_times.due(TicketReason.SMS_REPLY, None, now))
    session.add(ticket)
    session.flush()
    row.action = InboundAction.TICKET
    row.ticket_id = ticket.id
    session.flush()
    return row
