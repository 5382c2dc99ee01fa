"""The sender through the Tencent Cloud SMS adapter (real SDK, local stand-in for the API,
tests/contract/tencent_fake.py), on every store: each queued message goes out as the
approved template of its kind with the values read back from its body, and a long message
(one SerialNo for its two billed parts) is delivered on its one report."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator

import pytest

pytest.importorskip("tencentcloud.sms", reason="the cloud-sms extra is not installed")

from sqlalchemy import select

from core.audit import AuditLog
from core.clock import FakeClock
from core.enums import MessageStatus
from core.sms import SmsPolicy, queue
from core.sms_templates import TEMPLATES
from core.store.db import Database
from core.store.models import Patient, SmsMessage, SmsPart
from messaging.sender import SenderOptions, SmsSender
from messaging.tencent_sms import TencentSmsGateway
from tests.audit_key import TEST_AUDIT_KEY
from tests.contract.tencent_fake import APPROVED, FakeTencentSms, settings
from tests.contract.test_claims import NOW, _seed

POLICY = SmsPolicy(window=SmsPolicy.parse_window("08:00-20:00"), daily_cap=3,
                   hospital={"zh-CN": "示范医院", "en": "Demo Hospital"})
LONG_LINK = "https://fu.example.org/q/" + "A" * 35


@pytest.fixture
def fake() -> Iterator[FakeTencentSms]:
    served = FakeTencentSms().serve()
    yield served
    served.stop()


def _queue(db: Database, pid: int, key: str, values: dict[str, str]) -> int:
    with db.session() as s:
        return queue(s, POLICY, patient=s.get_one(Patient, pid), template=TEMPLATES[key],
                     values=values, now=NOW, department_id=1).id


async def _until_settled(db: Database, sender: SmsSender, count: int) -> None:
    """Write what the pollers brought until `count` messages reached a final state."""
    for _ in range(250):
        await sender.flush()
        with db.session() as s:
            if len(s.execute(select(SmsMessage.id).where(SmsMessage.final_at.is_not(None)))
                   .all()) >= count:
                return
        await asyncio.sleep(0.02)
    raise AssertionError("the delivery reports did not settle the messages")


async def test_each_message_goes_as_its_approved_template_and_is_settled(
        db: Database, fake: FakeTencentSms) -> None:
    _seed(db, [{}, {}, {"language": "en"}], [{}])
    link = _queue(db, 1, "questionnaire_link", {"link": LONG_LINK})
    notice = _queue(db, 2, "red_flag_notice", {"hours": "4"})
    reminder = _queue(db, 3, "revisit_reminder", {})
    gateway = TencentSmsGateway(settings(fake), poll_s=0.02, timeout_s=3)
    sender = SmsSender(db, gateway, FakeClock(NOW), POLICY, AuditLog(FakeClock(NOW),
                                                                     TEST_AUDIT_KEY),
                       SenderOptions(max_per_second=1000, retry=dt.timedelta(minutes=1)))
    await gateway.start(sender)
    try:
        assert await sender.drain_once() == 3
        sent = {r["SessionContext"]: (r["TemplateId"], r["TemplateParamSet"],
                                      r["PhoneNumberSet"]) for r in fake.sent()}
        assert sent == {
            str(link): (APPROVED["questionnaire_link"][0], [LONG_LINK], ["+8613800138001"]),
            str(notice): (APPROVED["red_flag_notice"][0], ["4"], ["+8613800138002"]),
            str(reminder): (APPROVED["revisit_reminder"][0], [], ["+8613800138003"]),
        }
        await _until_settled(db, sender, 3)
    finally:
        await gateway.close()
    with db.session() as s:
        messages = {m.id: m for m in s.execute(select(SmsMessage)).scalars()}
        parts = s.execute(select(SmsPart)).scalars().all()
    assert messages[link].segments == 2 and len([p for p in parts
                                                 if p.message_id == link]) == 1
    assert {m.status for m in messages.values()} == {MessageStatus.DELIVERED}
    assert all(m.gateway == "tencent" for m in messages.values())


async def test_a_body_that_no_longer_reads_as_its_template_fails_with_the_reason(
        db: Database, fake: FakeTencentSms) -> None:
    _seed(db, [{}], [{}])
    mid = _queue(db, 1, "questionnaire_link", {"link": "https://fu.example.org/q/x"})
    with db.session() as s:
        s.get_one(SmsMessage, mid).body = "edited by hand"
    gateway = TencentSmsGateway(settings(fake), poll_s=0.02)
    sender = SmsSender(db, gateway, FakeClock(NOW), POLICY, AuditLog(FakeClock(NOW),
                                                                     TEST_AUDIT_KEY))
    try:
        assert await sender.drain_once() == 0
    finally:
        await gateway.close()
    with db.session() as s:
        message = s.get_one(SmsMessage, mid)
    assert message.status is MessageStatus.FAILED
    assert "parameters are unknown" in (message.detail or "")
    assert fake.sent() == []
