"""After the last failed call the patient gets the questionnaire link by SMS, inside the
sending window only (issue 12's acceptance, on every store)."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from core.audit import AuditLog
from core.clock import AcceleratedClock, FakeClock
from core.enums import DialOutcome, MessagePurpose, MessageStatus, TaskStatus
from core.store.db import Database
from core.store.models import FollowupTask, SmsMessage, WebLink
from messaging.sender import SenderOptions, SmsSender
from messaging.sim import SimGateway
from messaging.triggers import LinkSettings, links_after_failed_calls
from tests.audit_key import TEST_AUDIT_KEY
from tests.contract.test_campaign import FakeTelephony, _campaign
from tests.contract.test_claims import NOW, _seed
from tests.contract.test_sms_sender import POLICY

SHANGHAI = ZoneInfo("Asia/Shanghai")
LINKS = LinkSettings(key=b"k" * 32, public_url="https://fu.example.org",
                     valid_for=dt.timedelta(hours=72))


async def test_the_link_goes_out_after_the_last_failed_call_and_only_in_the_window(
        db: Database, tmp_path: Path) -> None:
    _seed(db, [{"phone": "+8613800000002"}, {"phone": "+8613800000005"}],
          [{"patient_id": 1, "calling_window": "00:00-24:00", "max_attempts": 2},
           {"patient_id": 2, "calling_window": "00:00-24:00", "max_attempts": 2}])
    clock = AcceleratedClock(NOW, speed=3000)
    never = {"02": [DialOutcome.NO_ANSWER, DialOutcome.NO_ANSWER]}  # patient 2 answers
    campaign, claimer = _campaign(db, tmp_path, FakeTelephony(clock, never), clock, 2)
    await campaign.run(asyncio.Event(), until_idle=True, next_due=claimer.next_due)
    with db.session() as s:
        status = {t.patient_id: t.status for t in s.execute(select(FollowupTask)).scalars()}
    assert status == {1: TaskStatus.FAILED, 2: TaskStatus.DONE}

    evening = dt.datetime(2026, 3, 10, 21, 30, tzinfo=SHANGHAI)
    later = FakeClock(evening.astimezone(dt.UTC))
    with db.session() as s:
        assert links_after_failed_calls(s, POLICY, LINKS, later.now(), dt.timedelta(days=2)) \
            == 1
    sim = SimGateway(report_delay_s=0.01)
    sender = SmsSender(db, sim, later, POLICY, AuditLog(later, TEST_AUDIT_KEY),
                       SenderOptions(max_per_second=1000))
    await sim.start(sender)
    assert await sender.drain_once() == 0  # 21:30: not at night
    later.set(dt.datetime(2026, 3, 11, 7, 59, tzinfo=SHANGHAI).astimezone(dt.UTC))
    assert await sender.drain_once() == 0
    later.set(dt.datetime(2026, 3, 11, 8, 0, tzinfo=SHANGHAI).astimezone(dt.UTC))
    assert await sender.drain_once() == 1
    await asyncio.sleep(0.05)
    await sender.flush()
    with db.session() as s:
        message = s.execute(select(SmsMessage)).scalar_one()
        link = s.get_one(WebLink, message.link_id)
    sent = [a for a in sim.actions if a.kind == "submitted"]
    assert [a.to for a in sent] == ["+8613800000002"]
    assert message.purpose is MessagePurpose.QUESTIONNAIRE_LINK
    assert message.status is MessageStatus.DELIVERED
    assert message.submitted_at == later.now()
    assert link.patient_id == 1 and link.used_at is None
