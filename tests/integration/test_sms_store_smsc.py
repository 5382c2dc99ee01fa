"""Issue 12's acceptance against the real SMPP server (smpp.twisted3's, tests/smsc), on
every store: a message queued in the store is submitted by the sender and its delivery
report stored and matched; an MO 退订 from the patient's phone opts them out, and their
next planned call and next message are suppressed."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import select

from core.audit import AuditLog
from core.clock import FakeClock
from core.enums import CancelReason, InboundAction, MessageBlock, MessageStatus, TaskStatus
from core.store.db import Database
from core.store.models import FollowupTask, Patient, SmsInbound, SmsMessage, SmsReceipt
from messaging.sender import SenderOptions, SmsSender
from messaging.smpp import SmppGateway
from tests.audit_key import TEST_AUDIT_KEY
from tests.contract.test_claims import NOW, _claimer, _seed
from tests.contract.test_sms_gateway_contract import smpp_settings
from tests.contract.test_sms_sender import POLICY, _queue
from tests.smsc import Smsc

pytestmark = pytest.mark.smsc


async def _until(check: object, timeout_s: float = 10.0) -> None:
    assert callable(check)
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def _status(db: Database, message_id: int) -> MessageStatus:
    with db.session() as s:
        return s.get_one(SmsMessage, message_id).status


async def test_delivery_reports_are_stored_and_td_stops_the_next_call_and_message(
        db: Database, smsc: Smsc) -> None:
    _seed(db, [{}], [{"next_attempt_at": NOW + dt.timedelta(hours=2)}])
    clock = FakeClock(NOW)
    before = (await asyncio.to_thread(smsc.control, op="stats"))["submits"]
    gateway = SmppGateway(smpp_settings(smsc), response_timeout_s=3, backoff_s=(0.05, 0.5))
    sender = SmsSender(db, gateway, clock, POLICY, AuditLog(clock, TEST_AUDIT_KEY),
                       SenderOptions(max_per_second=200))
    stop = asyncio.Event()
    running = asyncio.create_task(sender.run(stop, idle_s=0.05))
    try:
        first = _queue(db, 1)
        await _until(lambda: _status(db, first) is MessageStatus.DELIVERED)
        with db.session() as s:
            receipts = s.execute(select(SmsReceipt)).scalars().all()
            phone = s.get_one(Patient, 1).phone
        assert len(receipts) == 1 and receipts[0].state == "DELIVRD"
        assert receipts[0].part_id is not None
        assert phone is not None
        await asyncio.to_thread(smsc.control, op="mo", sender=phone.removeprefix("+"),
                                text="退订", coding="ucs2")

        def opted_out() -> bool:
            with db.session() as s:
                return s.get_one(Patient, 1).opt_out_sms
        await _until(opted_out)
        second = _queue(db, 1)  # queued as blocked: the patient is out
        with db.session() as s:
            row = s.execute(select(SmsInbound)).scalar_one()
            assert s.get_one(SmsMessage, second).block_reason is MessageBlock.OPTED_OUT
        assert (row.action, row.body, row.patient_id) == (InboundAction.OPTED_OUT, "退订", 1)
    finally:
        stop.set()
        await running
    clock.set(NOW + dt.timedelta(hours=2))
    assert _claimer(db).claim(clock.now(), limit=5) == []
    with db.session() as s:
        task = s.execute(select(FollowupTask)).scalar_one()
    assert (task.status, task.cancel_reason) == (TaskStatus.CANCELLED, CancelReason.OPTED_OUT)
    stats = await asyncio.to_thread(smsc.control, op="stats")
    assert stats["submits"] - before == 1  # the blocked message never reached the server
