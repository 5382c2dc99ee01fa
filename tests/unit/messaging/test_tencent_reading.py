"""Reading Tencent Cloud SMS answers at the boundary: which codes are worth a retry, and
what a pulled status or reply becomes (never a crash)."""

from __future__ import annotations

import pytest

pytest.importorskip("tencentcloud.sms", reason="the cloud-sms extra is not installed")

from messaging.gateway import DeliveryReport, DeliveryState, InboundSms, SubmitStatus
from messaging.tencent_sms import (
    read_reply,
    read_send_answer,
    read_status,
    submit_status,
)


@pytest.mark.parametrize(("code", "status"), [
    ("LimitExceeded.PhoneNumberThirtySecondLimit", SubmitStatus.TEMPORARY),
    ("LimitExceeded.PhoneNumberDailyLimit", SubmitStatus.TEMPORARY),
    ("LimitExceeded.DeliveryFrequencyLimit", SubmitStatus.TEMPORARY),
    ("RequestLimitExceeded", SubmitStatus.TEMPORARY),
    ("InternalError.Timeout", SubmitStatus.TEMPORARY),
    ("ClientNetworkError", SubmitStatus.TEMPORARY),
    ("ServerNetworkError", SubmitStatus.TEMPORARY),
    ("AuthFailure.SignatureFailure", SubmitStatus.TEMPORARY),
    ("FailedOperation.InsufficientBalanceInSmsPackage", SubmitStatus.TEMPORARY),
    ("LimitExceeded.AppCountryOrRegionInBlacklist", SubmitStatus.PERMANENT),
    ("InvalidParameterValue.IncorrectPhoneNumber", SubmitStatus.PERMANENT),
    ("FailedOperation.PhoneNumberInBlacklist", SubmitStatus.PERMANENT),
    ("FailedOperation.SignatureIncorrectOrUnapproved", SubmitStatus.PERMANENT),
    ("FailedOperation.TemplateIncorrectOrUnapproved", SubmitStatus.PERMANENT),
    ("UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone", SubmitStatus.PERMANENT),
    ("SomethingNew", SubmitStatus.PERMANENT),
])
def test_only_named_codes_are_retried(code: str, status: SubmitStatus) -> None:
    assert submit_status(code) is status


def test_a_status_item_becomes_a_report_keyed_by_its_serial_number() -> None:
    ok = read_status({"SerialNo": "5000:1", "ReportStatus": "SUCCESS",
                      "Description": "DELIVRD", "PhoneNumber": "+8613800138000"})
    assert (ok.gateway_message_id, ok.state, ok.error) == ("5000:1", DeliveryState.DELIVERED,
                                                           None)
    failed = read_status({"SerialNo": "5000:2", "ReportStatus": "FAIL",
                          "Description": "a long description of why it failed"})
    assert failed.state is DeliveryState.UNDELIVERABLE
    assert failed.error == "a long descripti"  # the receipt's column holds 16 characters
    assert "why it failed" in failed.raw


@pytest.mark.parametrize("item", [None, 7, "text", [], {}, {"SerialNo": "5000:3"},
                                  {"SerialNo": 3, "ReportStatus": "SUCCESS"},
                                  {"SerialNo": "5000:4", "ReportStatus": "success?"},
                                  {"SerialNo": "5" * 65, "ReportStatus": "SUCCESS"}])
def test_an_unreadable_status_item_is_a_report_with_no_state(item: object) -> None:
    report = read_status(item)
    assert report.state is None and report.error is None and report.raw


def test_a_reply_becomes_an_inbound_message_or_an_unreadable_report() -> None:
    reply = read_reply({"PhoneNumber": "+8613700000007", "ReplyContent": "ＴＤ"})
    assert isinstance(reply, InboundSms)
    assert (reply.sender, reply.body) == ("+8613700000007", "ＴＤ")
    for item in ({"ReplyContent": "no number"}, {"PhoneNumber": "+8613700000007"}, "x"):
        unread = read_reply(item)
        assert isinstance(unread, DeliveryReport) and unread.state is None


def test_a_send_answer_without_its_entry_is_unreadable_not_accepted() -> None:
    with pytest.raises(Exception, match="no SendStatusSet"):
        read_send_answer({"RequestId": "r"}, "+8613800138000")
    with pytest.raises(Exception, match="no SerialNo"):
        read_send_answer({"SendStatusSet": [{"Code": "Ok", "PhoneNumber": "+8613800138000"}]},
                         "+8613800138000")
