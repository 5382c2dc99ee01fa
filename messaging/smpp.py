"""The SMPP 3.4 adapter: one transceiver bind to the carrier's or gateway's SMSC.

Library: `smpplib` (python-smpplib), not `aiosmpplib`. smpplib is the SMPP library most
Python SMS code runs on, small, maintained, and its PDU classes (build with
`smpp.make_pdu(...).generate()`, read with `smpp.parse_pdu`) stand apart from its blocking
socket client; so this adapter drives smpplib's PDUs over asyncio streams: one event loop,
no thread per connection, many submits in flight matched to their responses by sequence
number. aiosmpplib is asyncio-native but brings its own queue, retry timer, throttle handler
and rate limiter (a throttled submit is retried inside the library, where the sender's
retry policy and the store cannot see it) and answers through hooks rather than the submit
call; it is also a younger 0.x project. Session logic (bind, enquire_link, rebind with
backoff) is ours and short.

Behaviour: `start` connects and binds as a transceiver with `[sms]`'s credentials and
keeps the link: an `enquire_link` every `enquire_link_s`, and after a drop, a refused bind
or an unanswered enquire_link a rebind with exponential backoff. Nothing here raises for
the SMSC's answers: while unbound a submit is TEMPORARY, and so is a throttle or a full
queue; an invalid destination is PERMANENT. Each part goes with `registered_delivery=1`;
the result carries one message id per part. Every `deliver_sm` is answered with a
`deliver_sm_resp`, even one that cannot be read, and reaches the `GatewayEvents` as a
`DeliveryReport` (state None when unreadable) or an `InboundSms` (`smpp_reports`).
The throughput cap (`max_per_second`) is the sender's, not this adapter's. The parts of
one message go together; if the SMSC refuses one of them the message's result is that
refusal, and a retry sends every part again (a patient may then see a part twice: a
carrier refuses mid-message rarely, and the rest of the message would be lost otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from typing import Any

import smpplib.consts  # type: ignore[import-untyped]
import smpplib.exceptions  # type: ignore[import-untyped]
import smpplib.smpp  # type: ignore[import-untyped]

from core.settings import SmsSettings
from core.sms_text import SmsEncoding, TooLong, split
from messaging.gateway import (
    DeliveryReport,
    GatewayEvents,
    OutgoingSms,
    SubmitResult,
    SubmitStatus,
)
from messaging.smpp_reports import UDHI, DeliverSm, read_deliver_sm

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">LLLL")
_DELIVER_SM = 0x00000005
_DELIVER_SM_MIN_BODY = 17  # its mandatory fields, every string empty
_MAX_PDU = 64 * 1024
_HIGH_WATER = 256 * 1024  # wait for the socket when this much is unsent
_STATUS_NAMES: dict[int, str] = {
    value: name.removeprefix("SMPP_") for name, value in vars(smpplib.consts).items()
    if name.startswith("SMPP_ESME_") and isinstance(value, int)}
# submit_sm answers that mean "not now": retried later by the sender
_TEMPORARY_STATUSES = frozenset({
    smpplib.consts.SMPP_ESME_RTHROTTLED, smpplib.consts.SMPP_ESME_RMSGQFUL,
    smpplib.consts.SMPP_ESME_RSYSERR, smpplib.consts.SMPP_ESME_RX_T_APPN,
    smpplib.consts.SMPP_ESME_RINVBNDSTS, smpplib.consts.SMPP_ESME_RSUBMITFAIL,
})


def status_name(status: int) -> str:
    return _STATUS_NAMES.get(status, f"0x{status:08x}")


class _LinkDown(Exception):
    """The session ended (dropped, refused, unbound); the run loop rebinds."""


class _Sequence:
    """Sequence numbers for smpplib's PDUs (1 .. 0x7FFFFFFF, then round again)."""

    def __init__(self) -> None:
        self.sequence = 0

    def next_sequence(self) -> int:
        self.sequence = self.sequence % 0x7FFFFFFF + 1
        return self.sequence


def _source_ton_npi(source: str) -> tuple[str, int, int]:
    if not source:
        return "", 0, 0  # the SMSC's default for this account
    if source.startswith("+") and source[1:].isdigit():
        return source[1:], 1, 1  # international, ISDN
    if source.isdigit():
        return source, 0, 1  # a carrier's short code or long number as assigned
    return source, 5, 0  # alphanumeric sender id


class SmppGateway:
    """One SMPP 3.4 transceiver session (see the module docstring)."""

    def __init__(self, settings: SmsSettings, *, name: str = "smpp",
                 enquire_link_s: float = 30.0, response_timeout_s: float = 10.0,
                 backoff_s: tuple[float, float] = (1.0, 60.0), window: int = 64) -> None:
        self._settings = settings
        self._name = name
        self._enquire_link_s = enquire_link_s
        self._timeout_s = response_timeout_s
        self._backoff_s = backoff_s
        self._window = asyncio.Semaphore(window)
        self._sequence = _Sequence()
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._outgoing: list[bytes] = []  # PDUs written together at the end of this turn
        self._bound = False
        self._why_unbound = "not yet bound"
        self._reference = 0
        self._events: GatewayEvents | None = None
        self._task: asyncio.Task[None] | None = None
        self._first_attempt = asyncio.Event()
        self._closing = False

    @classmethod
    def from_settings(cls, settings: SmsSettings) -> SmppGateway:
        """The gateway `[sms]` describes, with the default timers."""
        return cls(settings)

    @property
    def name(self) -> str:
        return self._name

    @property
    def bound(self) -> bool:
        return self._bound

    async def start(self, events: GatewayEvents) -> None:
        """Bind (waiting for the first answer at most the response timeout); never raises
        for a refused bind or an unreachable SMSC: the link is retried in the background."""
        self._events = events
        self._task = asyncio.create_task(self._run(), name=f"smpp-{self._name}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), self._timeout_s * 2)

    async def close(self) -> None:
        self._closing = True
        writer = self._writer
        if writer is not None and self._bound:
            with contextlib.suppress(Exception):
                await self._request("unbind", {})
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def submit(self, sms: OutgoingSms) -> SubmitResult:
        if not self._bound:
            return SubmitResult(SubmitStatus.TEMPORARY, detail=f"not bound: {self._why_unbound}")
        self._reference = (self._reference + 1) % 256
        try:
            segments = split(sms.body, self._reference)
        except TooLong as exc:
            return SubmitResult(SubmitStatus.PERMANENT, detail=str(exc))
        destination = sms.to.removeprefix("+")
        source, source_ton, source_npi = _source_ton_npi(self._settings.source_addr)
        requests = [
            self._request("submit_sm", {
                "service_type": "",
                "source_addr_ton": source_ton, "source_addr_npi": source_npi,
                "source_addr": source, "dest_addr_ton": 1, "dest_addr_npi": 1,
                "destination_addr": destination,
                "esm_class": UDHI if segment.udh else 0,
                "data_coding": 0x08 if segment.encoding is SmsEncoding.UCS2 else 0x00,
                "registered_delivery": 1,
                "short_message": segment.short_message,
            })
            for segment in segments
        ]
        try:
            answers = await asyncio.gather(*requests)
        except (_LinkDown, TimeoutError) as exc:
            return SubmitResult(SubmitStatus.TEMPORARY,
                                detail=f"no answer to submit_sm: {exc or 'timeout'}")
        statuses = [answer.status for answer in answers]
        refused = next((status for status in statuses if status != 0), None)
        if refused is not None:
            kind = (SubmitStatus.TEMPORARY if refused in _TEMPORARY_STATUSES
                    else SubmitStatus.PERMANENT)
            return SubmitResult(kind, detail=status_name(refused))
        return SubmitResult(SubmitStatus.ACCEPTED,
                            part_ids=tuple(_text(answer.message_id) for answer in answers))

    # -- the session ------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while not self._closing:
            try:
                await self._session()
                failures = 0
            except (OSError, TimeoutError, _LinkDown, asyncio.IncompleteReadError) as exc:
                log.warning("SMPP %s: link down: %s", self._name, exc or type(exc).__name__)
                self._why_unbound = str(exc) or type(exc).__name__
            finally:
                self._bound = False
                self._first_attempt.set()
                self._drop_pending()
                self._outgoing.clear()  # for a connection that is gone
                if self._writer is not None:
                    self._writer.close()
                    self._writer = None
            failures += 1
            low, high = self._backoff_s
            await asyncio.sleep(min(high, low * 2 ** (failures - 1)))

    async def _session(self) -> None:
        settings = self._settings
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(settings.smpp_host, settings.smpp_port), self._timeout_s)
        self._writer = writer
        reading = asyncio.create_task(self._read(reader))
        try:
            answer = await self._request("bind_transceiver", {
                "system_id": settings.smpp_system_id,
                "password": settings.smpp_password.get_secret_value(),
                "system_type": settings.smpp_system_type,
                "addr_ton": 0, "addr_npi": 0, "address_range": ""})
            if answer.status != 0:
                raise _LinkDown(f"bind refused: {status_name(answer.status)}")
            self._bound = True
            self._why_unbound = ""
            self._first_attempt.set()
            log.info("SMPP %s: bound to %s:%s as %s", self._name, settings.smpp_host,
                     settings.smpp_port, settings.smpp_system_id)
            keepalive = asyncio.create_task(self._keepalive())
            try:
                await asyncio.wait({reading, keepalive}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                keepalive.cancel()
            if keepalive.done() and not keepalive.cancelled():
                keepalive.result()  # an unanswered enquire_link raises here
            raise _LinkDown("connection closed by the SMSC")
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reading

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(self._enquire_link_s)
            try:
                await self._request("enquire_link", {})
            except TimeoutError as exc:
                raise _LinkDown("enquire_link unanswered") from exc

    async def _request(self, command: str, fields: dict[str, Any]) -> Any:
        """Send one request PDU and wait for its response (by sequence number)."""
        writer = self._writer
        if writer is None:
            raise _LinkDown("not connected")
        async with self._window:
            pdu = smpplib.smpp.make_pdu(command, client=self._sequence, **fields)
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._pending[pdu.sequence] = future
            try:
                self._send(pdu.generate())
                if writer.transport.get_write_buffer_size() > _HIGH_WATER:
                    await writer.drain()
                async with asyncio.timeout(self._timeout_s):
                    return await future
            finally:
                self._pending.pop(pdu.sequence, None)

    def _drop_pending(self) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(_LinkDown("link down"))
        self._pending.clear()

    def _respond(self, command: str, sequence: int, status: int = 0,
                 **fields: Any) -> None:
        pdu = smpplib.smpp.make_pdu(command, client=self._sequence, status=status, **fields)
        pdu.sequence = sequence  # smpplib's constructor keeps its client's number instead
        self._send(pdu.generate())

    def _send(self, data: bytes) -> None:
        """Queue a PDU; the PDUs of one turn of the loop leave in one write (one syscall
        instead of one per PDU when many submits are in flight)."""
        if not self._outgoing:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outgoing.append(data)

    def _flush(self) -> None:
        data, self._outgoing = b"".join(self._outgoing), []
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(data)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            header = await reader.readexactly(16)
            length, command_id, _, sequence = _HEADER.unpack(header)
            if not 16 <= length <= _MAX_PDU:
                raise _LinkDown(f"a PDU of {length} octets")
            data = header + await reader.readexactly(length - 16)
            if command_id == _DELIVER_SM and length - 16 < _DELIVER_SM_MIN_BODY:
                # smpplib would read a cut-short PDU as an empty message from nobody
                self._unreadable(command_id, sequence, data, "shorter than its fields")
                continue
            try:
                pdu = smpplib.smpp.parse_pdu(data, client=self._sequence,
                                             allow_unknown_opt_params=True)
            except Exception as exc:  # whatever the library cannot read: answered below
                self._unreadable(command_id, sequence, data, exc)
                continue
            if pdu is None:
                self._unreadable(command_id, sequence, data, None)
                continue
            self._dispatch(pdu)

    def _dispatch(self, pdu: Any) -> None:
        command = pdu.command
        if pdu.is_response() or command == "generic_nack":
            future = self._pending.get(pdu.sequence)
            if future is not None and not future.done():
                future.set_result(pdu)
        elif command == "deliver_sm":
            self._respond("deliver_sm_resp", pdu.sequence)
            self._hand_over(read_deliver_sm(DeliverSm(
                esm_class=pdu.esm_class or 0, data_coding=pdu.data_coding or 0,
                source_addr=_text(pdu.source_addr),
                short_message=pdu.short_message or pdu.message_payload or b"",
                receipted_message_id=_text(pdu.receipted_message_id) or None,
                message_state=pdu.message_state)))
        elif command == "enquire_link":
            self._respond("enquire_link_resp", pdu.sequence)
        elif command == "unbind":
            self._respond("unbind_resp", pdu.sequence)
            raise _LinkDown("unbound by the SMSC")
        else:
            self._respond("generic_nack", pdu.sequence,
                          status=smpplib.consts.SMPP_ESME_RINVCMDID)

    def _unreadable(self, command_id: int, sequence: int, data: bytes,
                    exc: Exception | str | None) -> None:
        log.warning("SMPP %s: unreadable PDU 0x%08x (%s): %s", self._name, command_id,
                    exc, data.hex())
        if command_id == _DELIVER_SM:
            self._respond("deliver_sm_resp", sequence)
            self._hand_over(DeliveryReport(gateway_message_id=None, state=None, error=None,
                                           raw=data.hex()))
        elif not command_id & 0x80000000:
            self._respond("generic_nack", sequence, status=smpplib.consts.SMPP_ESME_RINVCMDID)

    def _hand_over(self, item: Any) -> None:
        events = self._events
        if events is None:
            return
        try:
            if isinstance(item, DeliveryReport):
                events.delivery_report(item)
            else:
                events.inbound(item)
        except Exception:  # a subscriber's fault must not stop the listener
            log.exception("SMPP %s: a receiver of %r failed", self._name, item)


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin-1").rstrip("\x00")
    return value
