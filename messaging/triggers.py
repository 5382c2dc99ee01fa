"""When the engine writes to a patient by itself (issue 12, uses a and c).

- `links_after_failed_calls`: a task whose last call attempt failed (status FAILED, closed
  within `since`) gets one message with a one-time link to the web questionnaire, valid for
  the link's lifetime; the message is not sent after the link expires.
- `red_flag_notices`: a red flag handled by ticket (no nurse took it live) gets "a nurse
  will call you within N hours", N the ticket's own response time; not sent once the
  ticket is closed or its time has passed.

Each looks for what has no message of its purpose yet, so running them again sends nothing
twice; `core.sms.queue` blocks what must not go (opted out, deceased, no mobile number).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from core import web_links
from core.enums import MessagePurpose, TaskStatus, TicketReason, TicketStatus
from core.sms import SmsPolicy, queue
from core.sms_templates import TEMPLATES
from core.store.models import FollowupTask, Patient, SmsMessage, Ticket


@dataclass(frozen=True)
class LinkSettings:
    key: bytes  # signs the tokens (the patient web's secret key)
    public_url: str  # the patient web's address, as patients open it
    valid_for: dt.timedelta


def links_after_failed_calls(session: Session, policy: SmsPolicy, links: LinkSettings,
                             now: dt.datetime, since: dt.timedelta) -> int:
    """Queue the questionnaire link for each task whose calls all failed; returns how many
    messages were written (queued or blocked)."""
    rows = session.execute(
        select(FollowupTask, Patient).join(Patient, Patient.id == FollowupTask.patient_id)
        .where(FollowupTask.status == TaskStatus.FAILED,
               FollowupTask.closed_at >= now - since,
               ~exists().where(SmsMessage.task_id == FollowupTask.id,
                               SmsMessage.purpose == MessagePurpose.QUESTIONNAIRE_LINK))
        .order_by(FollowupTask.id)).all()
    template = TEMPLATES["questionnaire_link"]
    for task, patient in rows:
        link, token = web_links.issue(session, key=links.key, patient_id=patient.id,
                                      task_id=task.id, now=now, valid_for=links.valid_for)
        queue(session, policy, patient=patient, template=template,
              values={"link": web_links.url(links.public_url, token)}, now=now,
              department_id=task.department_id, task_id=task.id, link_id=link.id,
              expires_at=link.expires_at)
    return len(rows)


def red_flag_notices(session: Session, policy: SmsPolicy, now: dt.datetime,
                     since: dt.timedelta) -> int:
    """Queue "a nurse will call you within N hours" for each open red-flag ticket raised
    within `since`; returns how many messages were written."""
    rows = session.execute(
        select(Ticket, Patient).join(Patient, Patient.id == Ticket.patient_id)
        .where(Ticket.reason == TicketReason.RED_FLAG, Ticket.status != TicketStatus.CLOSED,
               Ticket.created_at >= now - since, Ticket.due_at > now,
               ~exists().where(SmsMessage.ticket_id == Ticket.id,
                               SmsMessage.purpose == MessagePurpose.RED_FLAG_NOTICE))
        .order_by(Ticket.id)).all()
    template = TEMPLATES["red_flag_notice"]
    for ticket, patient in rows:
        assert ticket.due_at is not None
        hours = max(1, math.ceil((ticket.due_at - ticket.created_at).total_seconds() / 3600))
        queue(session, policy, patient=patient, template=template,
              values={"hours": str(hours)}, now=now, department_id=ticket.department_id,
              task_id=ticket.task_id, ticket_id=ticket.id, expires_at=ticket.due_at)
    return len(rows)
