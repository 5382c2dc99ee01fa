"""Queueing SMS, the rules at send time, inbound replies and the triggers, on every store.

The bodies are read as a patient would: the hospital's name, a neutral sentence and the
link; never the patient's name, a department or a diagnosis.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from core.audit import AuditLog
from core.clock import FakeClock
from core.enums import (
    InboundAction,
    MessageBlock,
    MessagePurpose,
    MessageStatus,
    Severity,
    TaskStatus,
    TicketReason,
    TicketStatus,
)
from core.sms import Due, SmsPolicy, hold_back, queue
from core.sms_templates import TEMPLATES
from core.store.db import Database
from core.store.models import (
    AuditEntry,
    FollowupTask,
    Patient,
    SmsInbound,
    SmsMessage,
    Ticket,
    WebLink,
)
from core.tickets import ResponseTimes
from core.web_links import signed, token_hash
from messaging.gateway import InboundSms
from messaging.inbound import handle, is_stop
from messaging.triggers import LinkSettings, links_after_failed_calls, red_flag_notices
from tests.audit_key import TEST_AUDIT_KEY
from tests.contract.test_claims import NOW, _seed

POLICY = SmsPolicy(window=SmsPolicy.parse_window("08:00-20:00"), daily_cap=2,
                   hospital={"zh-CN": "示范医院", "en": "Demo Hospital"})
KEY = b"k" * 32
LINKS = LinkSettings(key=KEY, public_url="https://fu.example.org", valid_for=dt.timedelta(hours=72))
LANDLINE = "+861065529988"  # a Beijing fixed line: no SMS


def _patient(db: Database, pid: int = 1) -> Patient:
    with db.session() as s:
        return s.get_one(Patient, pid)


def _queue(db: Database, pid: int = 1, at: dt.datetime = NOW,
           values: dict[str, str] | None = None) -> SmsMessage:
    with db.session() as s:
        return queue(s, POLICY, patient=s.get_one(Patient, pid),
                     template=TEMPLATES["questionnaire_link"],
                     values={"link": "https://fu.example.org/q/abc"} if values is None
                     else values, now=at, department_id=1)


def test_a_message_is_queued_inside_the_window_and_says_nothing_about_health(
        db: Database) -> None:
    _seed(db, [{}], [{}])
    m = _queue(db)
    assert m.status is MessageStatus.QUEUED and m.next_try_at == NOW  # 10:00 in Shanghai
    assert m.body.startswith("【示范医院】") and "https://fu.example.org/q/abc" in m.body
    assert "病人1" not in m.body and "心内科" not in m.body and "TD" in m.body
    assert (m.encoding, m.segments) == ("ucs2", 1)
    late = _queue(db, at=dt.datetime(2026, 3, 10, 13, 30, tzinfo=dt.UTC))  # 21:30 local
    assert late.next_try_at == dt.datetime(2026, 3, 11, 0, 0, tzinfo=dt.UTC)  # 08:00 next day


def test_blocked_messages_say_why_and_one_bad_message_does_not_stop_the_next(
        db: Database) -> None:
    _seed(db, [{"opt_out_sms": True}, {"deceased": True}, {"phone": LANDLINE}, {}], [{}])
    reasons = [_queue(db, pid).block_reason for pid in (1, 2, 3)]
    assert reasons == [MessageBlock.OPTED_OUT, MessageBlock.DECEASED, MessageBlock.NO_PHONE]
    missing = _queue(db, 4, values={})
    assert missing.status is MessageStatus.BLOCKED
    assert missing.block_reason is MessageBlock.MISSING_VARIABLE
    assert missing.detail == "no value for link"
    assert _queue(db, 4).status is MessageStatus.QUEUED


def _due(db: Database, message_id: int) -> Due:
    with db.session() as s:
        m = s.get_one(SmsMessage, message_id)
        p = s.get_one(Patient, m.patient_id)
        return Due(m.id, p.id, m.phone, m.expires_at, p.deceased, p.opt_out_sms, p.timezone)


def test_at_send_time_an_opt_out_blocks_and_the_daily_cap_waits_for_tomorrow(
        db: Database) -> None:
    _seed(db, [{}, {}, {}], [{}])
    first = _queue(db, 1)
    with db.session() as s:
        s.execute(update(Patient).where(Patient.id == 1).values(opt_out_sms=True))
    with db.session() as s:
        holds = hold_back(s, POLICY, [_due(db, first.id)], NOW)
    assert holds[first.id].block is MessageBlock.OPTED_OUT
    sent = _queue(db, 2)  # one went out today already
    with db.session() as s:
        s.execute(update(SmsMessage).where(SmsMessage.id == sent.id).values(
            status=MessageStatus.DELIVERED, submitted_at=NOW - dt.timedelta(hours=1)))
    second, third, other = _queue(db, 2), _queue(db, 2), _queue(db, 3)
    with db.session() as s:  # the cap is 2: the second goes, the third waits for tomorrow
        holds = hold_back(s, POLICY, [_due(db, m.id) for m in (second, third, other)], NOW)
    assert set(holds) == {third.id}
    assert holds[third.id].block is None
    assert holds[third.id].until == dt.datetime(2026, 3, 11, 0, 0, tzinfo=dt.UTC)


def test_stop_words_in_any_width_or_case() -> None:
    for body in ("TD", "td", "ＴＤ", " 退订 ", "退订。", "STOP", "Stop!", "ｓｔｏｐ"):
        assert is_stop(body), body
    for body in ("TD please call me", "不要退订", "stopping by", ""):
        assert not is_stop(body), body


def _inbound(db: Database, sender: str, body: str) -> SmsInbound:
    audit = AuditLog(FakeClock(NOW), TEST_AUDIT_KEY)
    with db.session() as s:
        return handle(s, audit, "smsc", InboundSms(sender, body, raw=body), NOW, "CN",
                      ResponseTimes())


def test_td_opts_the_patient_out_of_calls_and_messages_and_other_replies_make_a_ticket(
        db: Database) -> None:
    _seed(db, [{}, {}], [{}])
    number_1 = _patient(db, 1).phone
    assert number_1 is not None
    row = _inbound(db, "86" + number_1[3:], "ＴＤ")  # the SMSC's shape: 86 and no plus
    assert row.action is InboundAction.OPTED_OUT and row.patient_id == 1
    p = _patient(db, 1)
    assert p.opt_out_sms and p.opt_out_phone
    with db.session() as s:
        actions = [(a.action, a.object_id) for a in s.execute(select(AuditEntry)).scalars()]
    assert ("patient.opt_out", "1") in actions
    number_2 = _patient(db, 2).phone
    assert number_2 is not None
    reply = _inbound(db, number_2, "我最近头有点晕，想问问医生")
    assert reply.action is InboundAction.TICKET
    with db.session() as s:
        ticket = s.get_one(Ticket, reply.ticket_id)
    assert (ticket.reason, ticket.department_id, ticket.status) == (
        TicketReason.SMS_REPLY, 1, TicketStatus.OPEN)
    assert ticket.summary == "我最近头有点晕，想问问医生"
    assert not _patient(db, 2).opt_out_sms
    stranger = _inbound(db, "+8613912345678", "TD")
    assert stranger.action is InboundAction.UNKNOWN_SENDER and stranger.patient_id is None


def test_a_task_whose_calls_failed_gets_one_link_and_a_ticketed_red_flag_one_notice(
        db: Database) -> None:
    _seed(db, [{}, {}], [{"status": TaskStatus.FAILED, "closed_at": NOW},
                         {"patient_id": 2, "status": TaskStatus.DONE, "closed_at": NOW}])
    with db.session() as s:
        task_id = s.execute(select(FollowupTask.id).where(FollowupTask.plan_key == "k1")
                            ).scalar_one()
        assert links_after_failed_calls(s, POLICY, LINKS, NOW, dt.timedelta(days=2)) == 1
    with db.session() as s:
        assert links_after_failed_calls(s, POLICY, LINKS, NOW, dt.timedelta(days=2)) == 0
        message = s.execute(select(SmsMessage)).scalar_one()
        link = s.execute(select(WebLink)).scalar_one()
    assert (message.task_id, message.purpose, message.link_id) == (
        task_id, MessagePurpose.QUESTIONNAIRE_LINK, link.id)
    token = message.body.split("https://fu.example.org/q/")[1].split()[0]
    assert signed(token, KEY) and link.token_hash == token_hash(token) != token
    assert message.expires_at == link.expires_at == NOW + dt.timedelta(hours=72)
    assert message.segments == 2  # a real link makes it longer than 70 characters
    with db.session() as s:
        s.add(Ticket(task_id=task_id, patient_id=2, department_id=1,
                     reason=TicketReason.RED_FLAG, severity=Severity.HIGH, priority=1,
                     status=TicketStatus.OPEN, summary="", created_at=NOW,
                     due_at=NOW + dt.timedelta(hours=4)))
    with db.session() as s:
        assert red_flag_notices(s, POLICY, NOW, dt.timedelta(days=2)) == 1
        assert red_flag_notices(s, POLICY, NOW, dt.timedelta(days=2)) == 0
        notice = s.execute(select(SmsMessage).where(
            SmsMessage.purpose == MessagePurpose.RED_FLAG_NOTICE)).scalar_one()
    assert "4小时内" in notice.body and notice.expires_at == NOW + dt.timedelta(hours=4)
