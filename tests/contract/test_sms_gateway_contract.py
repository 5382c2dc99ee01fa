"""One contract for every SMS gateway: the sim, the SMPP adapter against a real SMPP
server this project did not write (smpp.twisted3, tests/smsc; the `smsc` tier), and the
Tencent Cloud SMS adapter through the real SDK against a local stand-in for its API
(tests/contract/tencent_fake.py; skipped when the `cloud-sms` extra is not installed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

import pytest

from core.settings import SmsSettings
from messaging.gateway import (
    DeliveryReport,
    DeliveryState,
    InboundSms,
    OutgoingSms,
    SmsGateway,
    SubmitStatus,
)
from messaging.sim import SimGateway
from messaging.smpp import SmppGateway
from tests.contract.tencent_fake import FakeTencentSms, settings
from tests.smsc import PASSWORD, SYSTEM_ID, Smsc

PATIENT = "+8613800138000"
LONG_CHINESE = "您好，这里是市第一人民医院随访中心。" * 5  # 95 characters: 2 UCS-2 parts


def sms(reference: int, to: str, body: str) -> OutgoingSms:
    """A message of our questionnaire_link template: the sim and SMPP send its body, Tencent
    Cloud SMS the approved template with the one parameter."""
    return OutgoingSms(reference, to, body, template="questionnaire_link", params=(body,))


@dataclass
class Recorder:
    """GatewayEvents that keeps what arrived and lets a test wait for it."""

    reports: list[DeliveryReport] = field(default_factory=list)
    inbound_messages: list[InboundSms] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def delivery_report(self, report: DeliveryReport) -> None:
        self.reports.append(report)
        self.changed.set()

    def inbound(self, message: InboundSms) -> None:
        self.inbound_messages.append(message)
        self.changed.set()

    async def until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(5):
            while not condition():
                self.changed.clear()
                await self.changed.wait()

    def report_for(self, part_id: str) -> DeliveryReport | None:
        return next((r for r in self.reports if r.gateway_message_id == part_id), None)


class Harness(Protocol):
    """What the contract needs from a gateway and the SMSC behind it."""

    @property
    def gateway(self) -> SmsGateway: ...

    one_id_per_message: bool  # a cloud service bills the parts but reports the message
    throttle_word: str  # in a throttled submit's detail
    refusal_word: str  # in the detail of a submit to a gateway that refuses our credentials

    async def throttle(self, count: int) -> None: ...
    async def fail_number(self, number: str) -> None: ...
    async def inject_mo(self, sender: str, text: str) -> None: ...
    async def malformed_receipt(self) -> None: ...
    def refused_gateway(self) -> SmsGateway: ...


@dataclass
class SimHarness:
    gateway: SimGateway
    one_id_per_message: bool = False
    throttle_word: str = "THROTTLED"
    refusal_word: str = "bind"

    async def throttle(self, count: int) -> None:
        self.gateway.throttle(count)

    async def fail_number(self, number: str) -> None:
        self.gateway.fail_number(number)

    async def inject_mo(self, sender: str, text: str) -> None:
        self.gateway.inject_mo(sender.removeprefix("+"), text)

    async def malformed_receipt(self) -> None:
        self.gateway.inject_receipt("garbled receipt stat:WHATEVER")

    def refused_gateway(self) -> SmsGateway:
        gateway = SimGateway()
        gateway.refuse_binds()
        return gateway


def smpp_settings(smsc: Smsc, password: str = PASSWORD) -> SmsSettings:
    return SmsSettings(gateway="smpp", smpp_port=smsc.smpp_port, smpp_system_id=SYSTEM_ID,
                       smpp_password=password, source_addr="10690")


@dataclass
class SmppHarness:
    gateway: SmppGateway
    smsc: Smsc
    one_id_per_message: bool = False
    throttle_word: str = "THROTTLED"
    refusal_word: str = "bind"

    async def _control(self, **order: object) -> None:
        await asyncio.to_thread(self.smsc.control, **order)

    async def throttle(self, count: int) -> None:
        await self._control(op="throttle", count=count)

    async def fail_number(self, number: str) -> None:
        await self._control(op="fail", number=number.removeprefix("+"))

    async def inject_mo(self, sender: str, text: str) -> None:
        await self._control(op="mo", sender=sender.removeprefix("+"), text=text, coding="ucs2")

    async def malformed_receipt(self) -> None:
        await self._control(op="malformed_dlr")

    def refused_gateway(self) -> SmsGateway:
        return SmppGateway(smpp_settings(self.smsc, password="wrong"), response_timeout_s=2,
                           backoff_s=(0.05, 0.2))


@dataclass
class TencentHarness:
    gateway: SmsGateway
    fake: FakeTencentSms
    one_id_per_message: bool = True
    throttle_word: str = "LimitExceeded"
    refusal_word: str = "AuthFailure"

    async def throttle(self, count: int) -> None:
        self.fake.throttle_left = count

    async def fail_number(self, number: str) -> None:
        self.fake.failing.add(number)

    async def inject_mo(self, sender: str, text: str) -> None:
        self.fake.reply(sender, text)

    async def malformed_receipt(self) -> None:
        self.fake.statuses.append({"SerialNo": 7, "ReportStatus": "garbled receipt"})

    def refused_gateway(self) -> SmsGateway:
        return tencent_gateway(self.fake, secret_key="not-the-key")


def tencent_gateway(fake: FakeTencentSms, **overrides: str) -> SmsGateway:
    from messaging.tencent_sms import TencentSmsGateway

    return TencentSmsGateway(settings(fake, **overrides), poll_s=0.02, timeout_s=3,
                             backoff_s=(0.05, 0.5))


@pytest.fixture(params=["sim", pytest.param("smpp", marks=pytest.mark.smsc), "tencent"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Harness, Recorder]]:
    events = Recorder()
    built: Harness
    fake: FakeTencentSms | None = None
    if request.param == "sim":
        built = SimHarness(SimGateway(report_delay_s=0.01))
    elif request.param == "tencent":
        pytest.importorskip("tencentcloud.sms", reason="the cloud-sms extra is not installed")
        fake = FakeTencentSms().serve()
        built = TencentHarness(tencent_gateway(fake), fake)
    else:
        smsc: Smsc = request.getfixturevalue("smsc")
        built = SmppHarness(SmppGateway(smpp_settings(smsc), response_timeout_s=3,
                                        backoff_s=(0.05, 0.5)), smsc)
    await built.gateway.start(events)
    yield built, events
    await built.gateway.close()
    if fake is not None:
        fake.stop()


async def test_a_submit_answers_one_id_and_is_reported_delivered(
        harness: tuple[Harness, Recorder]) -> None:
    h, events = harness
    result = await h.gateway.submit(sms(1, PATIENT, "Please fill in the form: x"))
    assert result.status is SubmitStatus.ACCEPTED
    (part_id,) = result.part_ids
    await events.until(lambda: events.report_for(part_id) is not None)
    report = events.report_for(part_id)
    assert report is not None and report.state is DeliveryState.DELIVERED


async def test_each_part_of_a_two_part_ucs2_message_has_its_own_report(
        harness: tuple[Harness, Recorder]) -> None:
    h, events = harness
    result = await h.gateway.submit(sms(2, PATIENT, LONG_CHINESE))
    assert result.status is SubmitStatus.ACCEPTED
    if h.one_id_per_message:  # billed as two parts, answered and reported as one message
        assert len(result.part_ids) == 1
    else:
        assert len(result.part_ids) == 2 and len(set(result.part_ids)) == 2
    await events.until(lambda: all(events.report_for(i) for i in result.part_ids))
    for part_id in result.part_ids:
        report = events.report_for(part_id)
        assert report is not None
        assert report.state is DeliveryState.DELIVERED
        assert part_id in report.raw


async def test_a_failed_number_is_reported_undeliverable(
        harness: tuple[Harness, Recorder]) -> None:
    h, events = harness
    await h.fail_number("+8613900000009")
    result = await h.gateway.submit(sms(3, "+8613900000009", "hello"))
    (part_id,) = result.part_ids
    await events.until(lambda: events.report_for(part_id) is not None)
    report = events.report_for(part_id)
    assert report is not None and report.state is DeliveryState.UNDELIVERABLE


async def test_an_mo_opt_out_arrives_as_inbound_text(harness: tuple[Harness, Recorder]) -> None:
    h, events = harness
    await h.inject_mo("+8613700000007", "退订")
    await events.until(lambda: bool(events.inbound_messages))
    (message,) = events.inbound_messages
    assert message.body == "退订"
    assert message.sender.endswith("13700000007")


async def test_a_throttle_is_temporary_and_passes(harness: tuple[Harness, Recorder]) -> None:
    h, _ = harness
    await h.throttle(1)
    throttled = await h.gateway.submit(sms(4, PATIENT, "hello"))
    assert throttled.status is SubmitStatus.TEMPORARY
    assert h.throttle_word in throttled.detail
    assert not throttled.part_ids
    again = await h.gateway.submit(sms(4, PATIENT, "hello"))
    assert again.status is SubmitStatus.ACCEPTED


async def test_a_refused_bind_is_temporary_not_a_crash(harness: tuple[Harness, Recorder]) -> None:
    h, _ = harness
    refused = h.refused_gateway()
    await refused.start(Recorder())  # returns: the link is retried in the background
    try:
        result = await refused.submit(sms(5, PATIENT, "hello"))
        assert result.status is SubmitStatus.TEMPORARY
        assert h.refusal_word in result.detail
    finally:
        await refused.close()


async def test_a_malformed_receipt_is_kept_with_no_state_and_the_listener_goes_on(
        harness: tuple[Harness, Recorder]) -> None:
    h, events = harness
    await h.malformed_receipt()
    await events.until(lambda: bool(events.reports))
    (report,) = events.reports
    assert report.state is None
    assert "garbled receipt" in report.raw
    result = await h.gateway.submit(sms(6, PATIENT, "still there?"))
    (part_id,) = result.part_ids
    await events.until(lambda: events.report_for(part_id) is not None)
