"""Reading deliver_sm: receipts of every shape an SMSC sends, and MOs by data coding."""

from __future__ import annotations

import pytest

from messaging.gateway import DeliveryReport, DeliveryState, InboundSms
from messaging.smpp_reports import DeliverSm, read_deliver_sm

RECEIPT = 0x04


def _report(text: str, **fields: object) -> DeliveryReport:
    result = read_deliver_sm(DeliverSm(esm_class=fields.pop("esm_class", RECEIPT),  # type: ignore[arg-type]
                                       data_coding=0, source_addr="8613800138000",
                                       short_message=text.encode("latin-1"), **fields))  # type: ignore[arg-type]
    assert isinstance(result, DeliveryReport)
    return result


def test_the_tlv_id_wins_over_the_text() -> None:
    report = _report("id:999 sub:001 dlvrd:001 submit date:2603100900 done date:2603100901 "
                     "stat:DELIVRD err:000 text:hello", receipted_message_id="0a1b")
    assert (report.gateway_message_id, report.state, report.error) == (
        "0a1b", DeliveryState.DELIVERED, "000")
    assert "stat:DELIVRD" in report.raw


def test_the_text_alone_gives_id_state_and_error() -> None:
    report = _report("id:4711 sub:001 dlvrd:000 submit date:2603100900 done date:2603100901 "
                     "stat:UNDELIV err:0b1 text:")
    assert (report.gateway_message_id, report.state, report.error) == (
        "4711", DeliveryState.UNDELIVERABLE, "0b1")


def test_lower_case_stat_and_an_intermediate_notification_are_read() -> None:
    report = _report("id:7 stat:enroute", esm_class=0x20)
    assert report.state is DeliveryState.ENROUTE and not report.state.final


def test_the_message_state_tlv_stands_in_for_a_missing_stat() -> None:
    report = _report("", receipted_message_id="42", message_state=3)
    assert report.state is DeliveryState.EXPIRED


@pytest.mark.parametrize("text", ["garbled", "id:5 stat:WHATEVER", "stat:DELIVRD", ""])
def test_an_unreadable_receipt_has_no_state_and_keeps_its_text(text: str) -> None:
    report = _report(text)
    assert report.state is None
    assert repr(text) in report.raw


@pytest.mark.parametrize(("coding", "payload", "text"), [
    (0x00, bytes((0x53, 0x54, 0x4F, 0x50, 0x1B, 0x65)), "STOP€"),
    (0x01, b"TD", "TD"),
    (0x03, "Désabonner".encode("latin-1"), "Désabonner"),
    (0x08, "退订".encode("utf-16-be"), "退订"),
    (0xF0, b"TD", "TD"),  # message class coding group, GSM alphabet
])
def test_an_mo_is_decoded_by_data_coding(coding: int, payload: bytes, text: str) -> None:
    result = read_deliver_sm(DeliverSm(esm_class=0, data_coding=coding,
                                       source_addr="8613700000001", short_message=payload))
    assert isinstance(result, InboundSms)
    assert (result.sender, result.body) == ("8613700000001", text)


def test_an_mo_with_a_udh_is_read_without_it() -> None:
    payload = bytes((5, 0, 3, 9, 2, 1)) + "退订".encode("utf-16-be")
    result = read_deliver_sm(DeliverSm(esm_class=0x40, data_coding=0x08,
                                       source_addr="1", short_message=payload))
    assert isinstance(result, InboundSms) and result.body == "退订"
