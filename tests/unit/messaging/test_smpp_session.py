"""The SMPP adapter's session against a scripted peer that speaks raw PDUs (struct, not
smpplib): keepalive, a silent SMSC, PDUs the library cannot read. The real server's
behaviour is the contract suite's (tests/contract/test_sms_gateway_contract.py)."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from core.settings import SmsSettings
from messaging.gateway import DeliveryReport, InboundSms, OutgoingSms, SubmitStatus
from messaging.smpp import SmppGateway

BIND_TRX, BIND_TRX_RESP = 0x00000009, 0x80000009
ENQUIRE, ENQUIRE_RESP = 0x00000015, 0x80000015
DELIVER_SM, DELIVER_SM_RESP = 0x00000005, 0x80000005
SUBMIT_SM, SUBMIT_SM_RESP = 0x00000004, 0x80000004
GENERIC_NACK = 0x80000000


def pdu(command: int, sequence: int, body: bytes = b"", status: int = 0) -> bytes:
    return struct.pack(">LLLL", 16 + len(body), command, status, sequence) + body


@dataclass
class ScriptedSmsc:
    answer_enquire_link: bool = True
    received: list[tuple[int, int, int]] = field(default_factory=list)  # command, status, seq
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        try:
            while True:
                length, command, status, sequence = struct.unpack(
                    ">LLLL", await reader.readexactly(16))
                await reader.readexactly(length - 16)
                self.received.append((command, status, sequence))
                self.changed.set()
                if command == BIND_TRX:
                    writer.write(pdu(BIND_TRX_RESP, sequence, b"smsc\x00"))
                elif command == ENQUIRE and self.answer_enquire_link:
                    writer.write(pdu(ENQUIRE_RESP, sequence))
                elif command == SUBMIT_SM:
                    writer.write(pdu(SUBMIT_SM_RESP, sequence, b"m1\x00"))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    def count(self, command: int) -> int:
        return sum(1 for c, _, _ in self.received if c == command)

    async def until(self, check: Callable[[], bool]) -> None:
        async with asyncio.timeout(3):
            while not check():
                self.changed.clear()
                await self.changed.wait()


class Events:
    def __init__(self) -> None:
        self.items: list[DeliveryReport | InboundSms] = []

    def delivery_report(self, report: DeliveryReport) -> None:
        self.items.append(report)

    def inbound(self, message: InboundSms) -> None:
        self.items.append(message)


@pytest.fixture
async def smsc() -> AsyncIterator[tuple[ScriptedSmsc, int]]:
    peer = ScriptedSmsc()
    server = await asyncio.start_server(peer.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield peer, port
    for writer in peer.writers:
        writer.close()
    server.close()
    await server.wait_closed()


def gateway(port: int, enquire_link_s: float = 30.0) -> SmppGateway:
    settings = SmsSettings(gateway="smpp", smpp_port=port, smpp_system_id="followup",
                           smpp_password="secret")
    return SmppGateway(settings, enquire_link_s=enquire_link_s, response_timeout_s=0.3,
                       backoff_s=(0.02, 0.1))


async def test_enquire_link_keeps_one_bind(smsc: tuple[ScriptedSmsc, int]) -> None:
    peer, port = smsc
    gw = gateway(port, enquire_link_s=0.05)
    await gw.start(Events())
    try:
        await peer.until(lambda: peer.count(ENQUIRE) >= 3)
        assert peer.count(BIND_TRX) == 1
        assert gw.bound
    finally:
        await gw.close()


async def test_an_unanswered_enquire_link_ends_the_link_and_binds_again(
        smsc: tuple[ScriptedSmsc, int]) -> None:
    peer, port = smsc
    peer.answer_enquire_link = False
    gw = gateway(port, enquire_link_s=0.05)
    await gw.start(Events())
    try:
        await peer.until(lambda: peer.count(BIND_TRX) >= 2)
    finally:
        await gw.close()


async def test_a_cut_short_deliver_sm_and_an_unknown_command_are_answered_and_kept(
        smsc: tuple[ScriptedSmsc, int]) -> None:
    peer, port = smsc
    events = Events()
    gw = gateway(port)
    await gw.start(events)
    try:
        # a deliver_sm cut short after its service_type: no addresses, no esm_class
        peer.writers[0].write(pdu(DELIVER_SM, 77, b"\x00\x01"))
        peer.writers[0].write(pdu(0x00000999, 78))  # a command nobody defined
        await peer.until(lambda: (DELIVER_SM_RESP, 0, 77) in peer.received
                         and any(c == GENERIC_NACK and s == 78 for c, _, s in peer.received))
        (report,) = events.items
        assert isinstance(report, DeliveryReport)
        assert report.state is None and report.gateway_message_id is None
        assert report.raw.endswith("0001")
        result = await gw.submit(OutgoingSms(1, "+8613800138000", "still bound"))
        assert result.status is SubmitStatus.ACCEPTED and result.part_ids == ("m1",)
    finally:
        await gw.close()
