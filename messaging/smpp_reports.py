"""Reading a received `deliver_sm`: a delivery report or a patient's message (an MO).

The SMPP adapter hands the PDU's fields here, already out of the library's objects, and
gets back one of the seam's typed values. A delivery report is marked by the esm_class
message-type bits (SMSC delivery receipt or intermediate notification); its message id
comes from the `receipted_message_id` TLV when present, else from the `id:` of the
receipt text (SMPP 3.4 appendix B), its state from `stat:` (else the `message_state`
TLV), its error from `err:`. A report nobody can read keeps its raw text and has state
None: the sender stores it and logs it; it never raises. An MO is decoded by its
data_coding (GSM-7, ASCII, Latin-1, UCS-2), its UDH (if any) left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.sms_text import decode_gsm7, strip_udh
from messaging.gateway import DeliveryReport, DeliveryState, InboundSms

_MESSAGE_TYPE_BITS = 0x3C
_RECEIPT_TYPES = (0x04, 0x20)  # SMSC delivery receipt; intermediate delivery notification
UDHI = 0x40  # esm_class: short_message starts with a user data header

# SMPP 3.4 5.2.28 message_state values
_MESSAGE_STATES = {1: DeliveryState.ENROUTE, 2: DeliveryState.DELIVERED,
                   3: DeliveryState.EXPIRED, 4: DeliveryState.DELETED,
                   5: DeliveryState.UNDELIVERABLE, 6: DeliveryState.ACCEPTED,
                   7: DeliveryState.UNKNOWN, 8: DeliveryState.REJECTED}
_ID = re.compile(r"\bid:\s*([^\s]+)", re.IGNORECASE)
_STAT = re.compile(r"\bstat:\s*([A-Za-z]+)", re.IGNORECASE)
_ERR = re.compile(r"\berr:\s*([0-9A-Za-z]+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class DeliverSm:
    """The fields of a received deliver_sm this module reads (bytes as on the wire)."""

    esm_class: int
    data_coding: int
    source_addr: str
    short_message: bytes
    receipted_message_id: str | None = None
    message_state: int | None = None


def is_receipt(esm_class: int) -> bool:
    return esm_class & _MESSAGE_TYPE_BITS in _RECEIPT_TYPES


def decode_text(short_message: bytes, data_coding: int) -> str:
    """The text of a short_message by its data_coding (unknown codings read as Latin-1)."""
    if data_coding & 0xF0 == 0xF0:  # "data coding / message class": bit 2 says 8-bit
        data_coding = 0x04 if data_coding & 0x04 else 0x00
    match data_coding:
        case 0x00:
            return decode_gsm7(short_message)
        case 0x01:
            return short_message.decode("ascii", errors="replace")
        case 0x08:
            return short_message.decode("utf-16-be", errors="replace")
        case _:
            return short_message.decode("latin-1")


def read_deliver_sm(pdu: DeliverSm) -> DeliveryReport | InboundSms:
    """A delivery report or an MO; never raises for what the PDU carries."""
    body = strip_udh(pdu.short_message) if pdu.esm_class & UDHI else pdu.short_message
    if not is_receipt(pdu.esm_class):
        text = decode_text(body, pdu.data_coding)
        return InboundSms(sender=pdu.source_addr, body=text, raw=_raw(pdu, text))
    text = body.decode("latin-1")  # receipt text is ASCII by the appendix
    raw = _raw(pdu, text)
    found_id = _ID.search(text)
    message_id = pdu.receipted_message_id or (found_id.group(1) if found_id else None)
    found_stat = _STAT.search(text)
    state: DeliveryState | None = None
    if found_stat is not None:
        try:
            state = DeliveryState(found_stat.group(1).upper())
        except ValueError:
            state = None
    elif pdu.message_state is not None:
        state = _MESSAGE_STATES.get(pdu.message_state)
    found_err = _ERR.search(text)
    if message_id is None:  # nothing to match it to: unreadable, kept raw
        state = None
    return DeliveryReport(gateway_message_id=message_id, state=state,
                          error=found_err.group(1) if found_err else None, raw=raw)


def _raw(pdu: DeliverSm, text: str) -> str:
    extras = []
    if pdu.receipted_message_id is not None:
        extras.append(f"receipted_message_id={pdu.receipted_message_id}")
    if pdu.message_state is not None:
        extras.append(f"message_state={pdu.message_state}")
    return " ".join([f"esm_class=0x{pdu.esm_class:02x}", f"data_coding=0x{pdu.data_coding:02x}",
                     f"from={pdu.source_addr}", *extras, f"text={text!r}"])
