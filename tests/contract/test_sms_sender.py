"""The sender against the sim gateway, on every store: what the store says went out is what
the gateway saw (`SimGateway.actions`), delivery reports settle messages, and the rules hold
at send time."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select, update

from core.audit import AuditLog
from core.clock import FakeClock
from core.enums import CancelReason, MessageBlock, MessageStatus, TaskStatus
from core.sms import SmsPolicy, queue
from core.sms_templates import TEMPLATES
from core.store.db import Database
from core.store.models import FollowupTask, Patient, SmsMessage, SmsPart, SmsReceipt
from messaging.sender import SenderOptions, SmsSender
from messaging.sim import SimGateway
from tests.audit_key import TEST_AUDIT_KEY
from tests.contract.test_claims import NOW, _claimer, _seed

POLICY = SmsPolicy(window=SmsPolicy.parse_window("08:00-20:00"), daily_cap=3,
                   hospital={"zh-CN": "示范医院", "en": "Demo Hospital"})
LONG_LINK = "https://fu.example.org/q/" + "A" * 35


def _sender(db: Database, clock: FakeClock, sim: SimGateway) -> SmsSender:
    return SmsSender(db, sim, clock, POLICY, AuditLog(clock, TEST_AUDIT_KEY),
                     SenderOptions(max_per_second=1000, retry=dt.timedelta(minutes=1)))


def _queue(db: Database, pid: int, link: str = "https://fu.example.org/q/x") -> int:
    with db.session() as s:
        return queue(s, POLICY, patient=s.get_one(Patient, pid),
                     template=TEMPLATES["questionnaire_link"], values={"link": link},
                     now=NOW, department_id=1).id


def _messages(db: Database) -> dict[int, SmsMessage]:
    with db.session() as s:
        return {m.id: m for m in s.execute(select(SmsMessage)).scalars()}


async def _settle(sender: SmsSender) -> None:
    await asyncio.sleep(0.05)  # the sim reports after report_delay_s
    await sender.flush()


async def test_what_the_store_says_went_out_is_what_the_gateway_saw(db: Database) -> None:
    _seed(db, [{}, {}, {}], [{}])
    clock = FakeClock(NOW)
    sim = SimGateway(report_delay_s=0.01)
    sim.fail_number("+8613800138003")
    ids = [_queue(db, 1), _queue(db, 2, LONG_LINK), _queue(db, 3)]
    sender = _sender(db, clock, sim)
    await sim.start(sender)
    assert await sender.drain_once() == 3
    await _settle(sender)
    m = _messages(db)
    submitted = {a.reference: a.part_ids for a in sim.actions if a.kind == "submitted"}
    assert set(submitted) == set(ids)
    assert [m[i].status for i in ids] == [MessageStatus.DELIVERED, MessageStatus.DELIVERED,
                                          MessageStatus.FAILED]
    assert m[ids[2]].detail == "UNDELIV err:001"
    with db.session() as s:
        parts = {(p.message_id, p.part, p.gateway_message_id, p.state)
                 for p in s.execute(select(SmsPart)).scalars()}
        receipts = s.execute(select(SmsReceipt)).scalars().all()
    assert len(submitted[ids[1]]) == 2 == m[ids[1]].segments
    assert parts == {(mid, n, pid, "DELIVRD" if mid != ids[2] else "UNDELIV")
                     for mid, pids in submitted.items() for n, pid in enumerate(pids, 1)}
    assert len(receipts) == 4 and all(r.part_id is not None for r in receipts)
    assert await sender.drain_once() == 0  # nothing is sent twice


async def test_a_throttled_submit_waits_and_goes_later(db: Database) -> None:
    _seed(db, [{}], [{}])
    clock = FakeClock(NOW)
    sim = SimGateway(report_delay_s=0.01)
    sim.throttle(1)
    mid = _queue(db, 1)
    sender = _sender(db, clock, sim)
    await sim.start(sender)
    assert await sender.drain_once() == 0
    m = _messages(db)[mid]
    assert (m.status, m.tries, m.detail) == (MessageStatus.QUEUED, 1, "ESME_RTHROTTLED")
    assert m.next_try_at == NOW + dt.timedelta(minutes=1)
    assert await sender.drain_once() == 0  # not before its time
    clock.advance(dt.timedelta(minutes=1))
    assert await sender.drain_once() == 1
    await _settle(sender)
    assert _messages(db)[mid].status is MessageStatus.DELIVERED


async def test_an_opt_out_after_queueing_and_the_night_stop_a_message_at_send_time(
        db: Database) -> None:
    _seed(db, [{}, {}], [{}])
    clock = FakeClock(NOW)
    sim = SimGateway()
    first, second = _queue(db, 1), _queue(db, 2)
    with db.session() as s:
        s.execute(update(Patient).where(Patient.id == 1).values(opt_out_sms=True))
    clock.set(dt.datetime(2026, 3, 10, 13, 0, tzinfo=dt.UTC))  # 21:00 in Shanghai
    sender = _sender(db, clock, sim)
    await sim.start(sender)
    assert await sender.drain_once() == 0
    m = _messages(db)
    assert (m[first].status, m[first].block_reason) == (MessageStatus.BLOCKED,
                                                         MessageBlock.OPTED_OUT)
    assert m[second].status is MessageStatus.QUEUED
    assert m[second].next_try_at == dt.datetime(2026, 3, 11, 0, 0, tzinfo=dt.UTC)  # 08:00
    assert not [a for a in sim.actions if a.kind == "submitted"]


async def test_a_report_that_outruns_its_submit_and_a_garbled_one_are_kept(
        db: Database) -> None:
    _seed(db, [{}], [{}])
    clock = FakeClock(NOW)
    sim = SimGateway(report_delay_s=60)  # its own reports come too late for this test
    mid = _queue(db, 1)
    sender = _sender(db, clock, sim)
    await sim.start(sender)
    sim.inject_receipt("id:sim-1 sub:001 dlvrd:001 submit date:2603101000 "
                       "done date:2603101000 stat:DELIVRD err:000 text:")
    sim.inject_receipt("this is not a receipt")
    await asyncio.sleep(0)
    await sender.flush()
    with db.session() as s:
        kept = s.execute(select(SmsReceipt).order_by(SmsReceipt.id)).scalars().all()
    assert [(r.gateway_message_id, r.state, r.part_id) for r in kept] == [
        ("sim-1", "DELIVRD", None), (None, None, None)]
    assert "this is not a receipt" in kept[1].raw
    assert await sender.drain_once() == 1
    assert _messages(db)[mid].status is MessageStatus.DELIVERED
    await sim.close()


async def test_td_from_the_phone_stops_the_next_call_and_the_next_message(
        db: Database) -> None:
    _seed(db, [{}], [{}])
    clock = FakeClock(NOW)
    sim = SimGateway()
    waiting = _queue(db, 1)
    sender = _sender(db, clock, sim)
    await sim.start(sender)
    with db.session() as s:
        phone = s.get_one(Patient, 1).phone
    assert phone is not None
    sim.inject_mo(phone.lstrip("+"), "退订")
    await asyncio.sleep(0)
    await sender.flush()
    assert await sender.drain_once() == 0
    assert _messages(db)[waiting].block_reason is MessageBlock.OPTED_OUT
    assert _claimer(db).claim(NOW, limit=5) == []
    with db.session() as s:
        task = s.execute(select(FollowupTask)).scalar_one()
    assert (task.status, task.cancel_reason) == (TaskStatus.CANCELLED, CancelReason.OPTED_OUT)
