"""The Tencent Cloud SMS adapter through the real SDK (`tencentcloud-sdk-python-sms`)
against a local stand-in for the API (tests/contract/tencent_fake.py), whose answers are
shaped after the examples and error codes of the public API documentation (SendSms,
PullSmsSendStatus, PullSmsReplyStatus, version 2021-01-11). What the stand-in received
proves the template-code model: an approved TemplateId and its parameters go out, never
our body. The behaviour every gateway shares is in test_sms_gateway_contract.py."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Iterator

import pytest

pytest.importorskip("tencentcloud.sms", reason="the cloud-sms extra is not installed")

from messaging.gateway import DeliveryState, OutgoingSms, SubmitStatus
from messaging.tencent_sms import TencentSmsGateway
from tests.contract.tencent_fake import (
    APPROVED,
    SDK_APP_ID,
    SIGN_NAME,
    FakeTencentSms,
    settings,
)
from tests.contract.test_sms_gateway_contract import Recorder

PATIENT = "+8613800138000"
LINK = "https://fu.example.org/q/AbC123"
BODY = f"【{SIGN_NAME}】您好，邀请您填写一份简短问卷：{LINK} 回复TD退订"


def link_sms(reference: int = 1, to: str = PATIENT) -> OutgoingSms:
    return OutgoingSms(reference, to, BODY, template="questionnaire_link", params=(LINK,))


@pytest.fixture
def fake() -> Iterator[FakeTencentSms]:
    served = FakeTencentSms().serve()
    yield served
    served.stop()


def _gateway(fake: FakeTencentSms, **overrides: str) -> TencentSmsGateway:
    return TencentSmsGateway(settings(fake, **overrides), poll_s=0.02, timeout_s=3,
                             backoff_s=(0.02, 0.1))


@pytest.fixture
async def started(fake: FakeTencentSms) -> AsyncIterator[tuple[TencentSmsGateway, Recorder]]:
    gateway, events = _gateway(fake), Recorder()
    await gateway.start(events)
    yield gateway, events
    await gateway.close()


async def test_the_approved_template_and_its_parameters_go_out_not_the_body(
        fake: FakeTencentSms, started: tuple[TencentSmsGateway, Recorder]) -> None:
    gateway, _ = started
    result = await gateway.submit(link_sms(reference=41))
    assert result.status is SubmitStatus.ACCEPTED
    (sent,) = fake.sent()
    assert sent == {"PhoneNumberSet": [PATIENT], "SmsSdkAppId": SDK_APP_ID,
                    "SignName": SIGN_NAME, "TemplateId": APPROVED["questionnaire_link"][0],
                    "TemplateParamSet": [LINK], "SessionContext": "41"}
    (request,) = [r for r in fake.requests if r.action == "SendSms"]
    assert request.headers["X-TC-Version"] == "2021-01-11"
    assert request.headers["X-TC-Region"] == "ap-guangzhou"


async def test_a_template_without_parameters_sends_an_empty_set(
        fake: FakeTencentSms, started: tuple[TencentSmsGateway, Recorder]) -> None:
    gateway, _ = started
    result = await gateway.submit(OutgoingSms(2, PATIENT, "x", template="revisit_reminder",
                                              params=()))
    assert result.status is SubmitStatus.ACCEPTED
    (sent,) = fake.sent()
    assert sent["TemplateId"] == APPROVED["revisit_reminder"][0]
    assert sent["TemplateParamSet"] == []


async def test_the_serial_number_is_the_part_id_and_its_report_arrives(
        fake: FakeTencentSms, started: tuple[TencentSmsGateway, Recorder]) -> None:
    gateway, events = started
    result = await gateway.submit(link_sms())
    (serial,) = result.part_ids
    assert serial.startswith("5000:")
    await events.until(lambda: events.report_for(serial) is not None)
    report = events.report_for(serial)
    assert report is not None
    assert report.state is DeliveryState.DELIVERED and report.error is None
    assert '"DELIVRD"' in report.raw and '"SessionContext": "1"' in report.raw


async def test_a_failed_delivery_is_undeliverable_with_its_description(
        fake: FakeTencentSms, started: tuple[TencentSmsGateway, Recorder]) -> None:
    gateway, events = started
    fake.failing.add("+8613900000009")
    (serial,) = (await gateway.submit(link_sms(to="+8613900000009"))).part_ids
    await events.until(lambda: events.report_for(serial) is not None)
    report = events.report_for(serial)
    assert report is not None
    assert report.state is DeliveryState.UNDELIVERABLE
    assert report.error == "MK:0001" and '"FAIL"' in report.raw


async def test_a_reply_arrives_as_an_inbound_message(
        fake: FakeTencentSms, started: tuple[TencentSmsGateway, Recorder]) -> None:
    _, events = started
    fake.reply("+8613700000007", "退订")
    await events.until(lambda: bool(events.inbound_messages))
    (message,) = events.inbound_messages
    assert message.sender == "+8613700000007" and message.body == "退订"
    assert "13700000007" in message.raw


async def test_a_frequency_limit_is_temporary(
        fake: FakeTencentSms, started: tuple[TencentSmsGateway, Recorder]) -> None:
    gateway, _ = started
    fake.throttle_left = 1
    result = await gateway.submit(link_sms())
    assert result.status is SubmitStatus.TEMPORARY
    assert result.detail.startswith("LimitExceeded.PhoneNumberThirtySecondLimit: ")
    assert (await gateway.submit(link_sms())).status is SubmitStatus.ACCEPTED


async def test_an_invalid_number_is_permanent_with_tencents_words(
        started: tuple[TencentSmsGateway, Recorder]) -> None:
    gateway, _ = started
    result = await gateway.submit(link_sms(to="+8612345"))
    assert result.status is SubmitStatus.PERMANENT
    assert result.detail == ("InvalidParameterValue.IncorrectPhoneNumber: incorrect phone "
                             "number format")


async def test_parameters_that_do_not_fit_the_approved_template_are_permanent(
        started: tuple[TencentSmsGateway, Recorder]) -> None:
    gateway, _ = started
    result = await gateway.submit(OutgoingSms(3, PATIENT, BODY, template="questionnaire_link",
                                              params=(LINK, "extra")))
    assert result.status is SubmitStatus.PERMANENT
    assert result.detail.startswith("FailedOperation.TemplateParamSetNotMatchApprovedTemplate")


async def test_a_template_with_no_template_id_or_unreadable_body_is_refused_locally(
        fake: FakeTencentSms) -> None:
    gateway = TencentSmsGateway(settings(fake).model_copy(update={
        "tencent_templates": {"questionnaire_link": "1110001"}}))
    try:
        no_id = await gateway.submit(OutgoingSms(4, PATIENT, "x", template="red_flag_notice",
                                                 params=("4",)))
        assert no_id.status is SubmitStatus.PERMANENT
        assert "no Tencent TemplateId for template 'red_flag_notice'" in no_id.detail
        no_template = await gateway.submit(OutgoingSms(5, PATIENT, "x"))
        assert no_template.status is SubmitStatus.PERMANENT
        unread = await gateway.submit(OutgoingSms(6, PATIENT, "edited since",
                                                  template="questionnaire_link", params=None))
        assert unread.status is SubmitStatus.PERMANENT
        assert "parameters are unknown" in unread.detail
    finally:
        await gateway.close()
    assert fake.sent() == []


async def test_unreadable_status_items_are_kept_with_no_state_and_polling_goes_on(
        fake: FakeTencentSms, started: tuple[TencentSmsGateway, Recorder]) -> None:
    gateway, events = started
    fake.statuses.extend(["not an object", {"ReportStatus": "SUCCESS"},
                          {"SerialNo": "5000:9", "ReportStatus": "MAYBE"}])
    fake.replies.append({"ReplyContent": "who is this?"})  # no number
    await events.until(lambda: len(events.reports) == 4)
    assert all(r.state is None for r in events.reports)
    raws = " ".join(r.raw for r in events.reports)
    assert "not an object" in raws and '"MAYBE"' in raws and "who is this?" in raws
    assert "5000:9" in {r.gateway_message_id for r in events.reports}
    (serial,) = (await gateway.submit(link_sms())).part_ids
    await events.until(lambda: events.report_for(serial) is not None)


async def test_a_failing_pull_is_retried_with_backoff(
        fake: FakeTencentSms, started: tuple[TencentSmsGateway, Recorder],
        caplog: pytest.LogCaptureFixture) -> None:
    gateway, events = started
    fake.pull_errors_left = 4
    with caplog.at_level(logging.WARNING, logger="messaging.tencent_sms"):
        (serial,) = (await gateway.submit(link_sms())).part_ids
        await events.until(lambda: events.report_for(serial) is not None)
    assert "InternalError.Timeout" in caplog.text


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_api_that_cannot_be_reached_is_temporary_and_start_does_not_fail(
        fake: FakeTencentSms, caplog: pytest.LogCaptureFixture) -> None:
    gateway = _gateway(fake, endpoint=f"http://127.0.0.1:{_closed_port()}")
    with caplog.at_level(logging.WARNING, logger="messaging.tencent_sms"):
        await gateway.start(Recorder())
        try:
            result = await gateway.submit(link_sms())
            await asyncio.sleep(0.1)  # the pollers fail and back off meanwhile
        finally:
            await gateway.close()
    assert result.status is SubmitStatus.TEMPORARY
    assert result.detail.startswith("ClientNetworkError: ")
    assert "PullSmsSendStatus failed" in caplog.text
    assert (await gateway.submit(link_sms())).status is SubmitStatus.TEMPORARY  # closed
