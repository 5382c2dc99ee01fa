"""Queueing an SMS to a patient, and the rules every message obeys until it goes.

`queue` writes the message in the caller's transaction: QUEUED with the time it may first
go (`next_try_at`, inside the sending window in the patient's zone), or BLOCKED at once
with the reason (deceased, opted out, no mobile number, a number listed as not theirs, a
template value missing). The sender (`messaging.sender`) asks `hold_back` again at send
time, so an opt-out that arrives while a message waits still stops it; outside the window
or over the patient's daily cap a message waits for the next window instead.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import phonenumbers
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from core import do_not_call
from core.enums import DncReason, MessageBlock, MessageStatus
from core.sms_templates import FALLBACK_LOCALE, MissingValue, SmsTemplate
from core.sms_text import count
from core.store.models import Patient, SmsMessage

_MOBILE = (phonenumbers.PhoneNumberType.MOBILE,
           phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)


@dataclass(frozen=True)
class SmsPolicy:
    """The hospital's rules for messages (from `[sms]` and `[hospital]`)."""

    window: tuple[dt.time, dt.time]  # local sending hours in the patient's zone
    daily_cap: int  # messages submitted per patient per local day
    hospital: Mapping[str, str]  # the hospital's name per locale

    @staticmethod
    def parse_window(text: str) -> tuple[dt.time, dt.time]:
        start, end = text.split("-")
        return dt.time.fromisoformat(start), dt.time.fromisoformat(end)


@dataclass(frozen=True, slots=True)
class Hold:
    """Why a message may not go now: blocked for good, or to wait until `until`."""

    block: MessageBlock | None = None
    until: dt.datetime | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Due:
    """What the send-time check reads of a message and its patient."""

    message_id: int
    patient_id: int
    phone: str | None
    expires_at: dt.datetime | None
    deceased: bool
    opted_out: bool  # opted out of SMS
    timezone: str


def locale_of(patient: Patient) -> str:
    return "en" if (patient.language or "").lower().startswith("en") else FALLBACK_LOCALE


@functools.lru_cache(maxsize=65536)
def mobile(phone: str | None) -> bool:
    """Whether `phone` (E.164) can receive an SMS: a mobile number, as far as the numbering
    plan can tell."""
    if not phone:
        return False
    try:
        number = phonenumbers.parse(phone)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.number_type(number) in _MOBILE


def window_close(day: dt.date, zone: str, window: tuple[dt.time, dt.time]) -> dt.datetime:
    """When the sending window of the local `day` closes, in UTC."""
    return dt.datetime.combine(day, window[1], ZoneInfo(zone)).astimezone(dt.UTC)


def window_open(now: dt.datetime, zone: str, window: tuple[dt.time, dt.time]) -> dt.datetime:
    """The first moment at or after `now` (UTC) inside the sending window, in `zone`."""
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    start, end = window
    if local.time() < start:
        opens = dt.datetime.combine(local.date(), start, tz)
    elif local.time() >= end:
        opens = dt.datetime.combine(local.date() + dt.timedelta(days=1), start, tz)
    else:
        return now
    return opens.astimezone(dt.UTC)


def queue(session: Session, policy: SmsPolicy, *, patient: Patient, template: SmsTemplate,
          values: Mapping[str, str], now: dt.datetime, department_id: int | None = None,
          task_id: int | None = None, ticket_id: int | None = None,
          link_id: int | None = None, expires_at: dt.datetime | None = None,
          plan_key: str | None = None) -> SmsMessage:
    """Write one message for `patient` in the caller's transaction: queued for its first
    moment in the window, or blocked with the reason."""
    locale = locale_of(patient)
    phone = patient.phone
    listed = do_not_call.blocked(session, [phone], now) if phone else {}
    hold = _blocked(Due(0, patient.id, phone, None, patient.deceased, patient.opt_out_sms,
                        patient.timezone), listed)
    body = ""
    if hold is None:
        try:
            body = template.render(locale, {"hospital": policy.hospital.get(locale, ""),
                                            **values})
        except MissingValue as missing:
            hold = Hold(MessageBlock.MISSING_VARIABLE, detail=f"no value for {missing.name}")
    encoding, segments, _ = count(body)
    message = SmsMessage(
        patient_id=patient.id, department_id=department_id, task_id=task_id,
        ticket_id=ticket_id, link_id=link_id, plan_key=plan_key, purpose=template.purpose,
        template=template.key, locale=locale, phone=phone, body=body, encoding=encoding,
        segments=segments, status=MessageStatus.QUEUED, tries=0, expires_at=expires_at,
        created_at=now, next_try_at=window_open(now, patient.timezone, policy.window))
    if hold is not None:
        message.status = MessageStatus.BLOCKED
        message.block_reason = hold.block
        message.detail = hold.detail or None
        message.final_at = now
        message.next_try_at = now
    session.add(message)
    session.flush()
    return message


def hold_back(conn: Connection | Session, policy: SmsPolicy, due: Sequence[Due],
              now: dt.datetime) -> dict[int, Hold]:
    """Why each message of `due` may not go at `now`, by message id (absent: send it):
    blocked now (expired, deceased or opted out since it was queued, the number listed as
    not the patient's) or waiting (outside the window, the patient's daily cap reached, a
    message earlier in `due` counting towards it). Two queries for the whole batch."""
    phones = {d.phone for d in due if d.phone}
    listed = do_not_call.blocked(conn, phones, now) if phones else {}
    sent: dict[int, list[dt.datetime]] = {}
    if due:
        for patient_id, at in conn.execute(
                select(SmsMessage.patient_id, SmsMessage.submitted_at).where(
                    SmsMessage.patient_id.in_(sorted({d.patient_id for d in due})),
                    SmsMessage.submitted_at >= now - dt.timedelta(days=2))):
            if at is not None:
                sent.setdefault(patient_id, []).append(at)
    holds: dict[int, Hold] = {}
    for d in due:
        hold = _hold(policy, d, listed, sent, now)
        if hold is not None:
            holds[d.message_id] = hold
        else:
            sent.setdefault(d.patient_id, []).append(now)  # it goes now: it counts
    return holds


def _blocked(d: Due, listed: Mapping[str, DncReason]) -> Hold | None:
    """Whether the patient may not be sent anything (whenever it would go)."""
    if d.deceased:
        return Hold(MessageBlock.DECEASED)
    if d.opted_out:
        return Hold(MessageBlock.OPTED_OUT)
    if not mobile(d.phone):
        return Hold(MessageBlock.NO_PHONE, detail="no mobile number")
    if listed.get(d.phone or "") is DncReason.WRONG_NUMBER:
        return Hold(MessageBlock.DO_NOT_CALL, detail="the number is listed as not the patient's")
    return None


def _hold(policy: SmsPolicy, d: Due, listed: Mapping[str, DncReason],
          sent: Mapping[int, list[dt.datetime]], now: dt.datetime) -> Hold | None:
    if d.expires_at is not None and now >= d.expires_at:
        return Hold(MessageBlock.EXPIRED, detail="its day passed before it could go")
    blocked = _blocked(d, listed)
    if blocked is not None:
        return blocked
    opens = window_open(now, d.timezone, policy.window)
    if opens > now:
        return Hold(until=opens)
    tz = ZoneInfo(d.timezone)
    day_start = dt.datetime.combine(now.astimezone(tz).date(), dt.time(0), tz)
    if sum(1 for at in sent.get(d.patient_id, ()) if at >= day_start) >= policy.daily_cap:
        tomorrow = day_start + dt.timedelta(days=1)
        return Hold(until=window_open(tomorrow.astimezone(dt.UTC), d.timezone, policy.window))
    return None
