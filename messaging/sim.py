"""The sim gateway: an in-memory SMSC for the demo and the tests (`[sms] gateway = "sim"`).

It answers like the SMPP adapter does: one id per part (the body split by the same
`core.sms_text`), a delivery report for each part `report_delay_s` later (DELIVRD, or
UNDELIV for a number told to fail), TEMPORARY while it refuses binds or throttles.
A test can inject an MO or a receipt's raw text (read by the same `smpp_reports` parser
as the SMPP adapter's). Everything it did is appended to `actions`, so a test compares
the store with what really went out.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass

from core.sms_text import TooLong, split
from messaging.gateway import (
    DeliveryReport,
    DeliveryState,
    GatewayEvents,
    InboundSms,
    OutgoingSms,
    SubmitResult,
    SubmitStatus,
)
from messaging.smpp_reports import DeliverSm, read_deliver_sm


@dataclass(frozen=True, slots=True)
class SimAction:
    """One thing the sim did: a submit taken or refused, a report or an MO handed over."""

    kind: str  # "submitted" | "refused" | "report" | "inbound"
    reference: int | None = None  # the message's own id, for submits
    to: str = ""
    part_ids: tuple[str, ...] = ()
    detail: str = ""  # the refusal, the report's state, the MO's text


class SimGateway:
    """An SMS gateway that sends nothing anywhere (see the module docstring)."""

    def __init__(self, *, name: str = "sim", report_delay_s: float = 0.05) -> None:
        self._name = name
        self.report_delay_s = report_delay_s
        self.actions: list[SimAction] = []
        self._events: GatewayEvents | None = None
        self._ids = itertools.count(1)
        self._reference = 0
        self._refusing_bind = False
        self._throttle_left = 0
        self._failing: set[str] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}  # by part id, until reported

    @property
    def name(self) -> str:
        return self._name

    # -- what a test tells it -----------------------------------------------------------

    def refuse_binds(self, refuse: bool = True) -> None:
        """Refuse every bind (a wrong password, a gateway down) until told otherwise."""
        self._refusing_bind = refuse

    def throttle(self, count: int) -> None:
        """Answer the next `count` submits ESME_RTHROTTLED."""
        self._throttle_left = count

    def fail_number(self, number: str) -> None:
        """Reports for `number` (E.164) say UNDELIV."""
        self._failing.add(number)

    def inject_mo(self, sender: str, body: str) -> None:
        """A patient's message arrives (handed to the events on the loop)."""
        message = InboundSms(sender=sender, body=body, raw=f"sim mo from={sender}")
        self.actions.append(SimAction("inbound", to=sender, detail=body))
        asyncio.get_running_loop().call_soon(self._inbound, message)

    def inject_receipt(self, text: str) -> None:
        """A delivery receipt with this text arrives, read as the SMPP adapter reads one."""
        report = read_deliver_sm(DeliverSm(esm_class=0x04, data_coding=0,
                                           source_addr="", short_message=text.encode()))
        assert isinstance(report, DeliveryReport)
        asyncio.get_running_loop().call_soon(self._report, report)

    # -- the seam -----------------------------------------------------------------------

    async def start(self, events: GatewayEvents) -> None:
        self._events = events

    async def submit(self, sms: OutgoingSms) -> SubmitResult:
        refusal = ("not bound: bind refused (sim)" if self._refusing_bind or self._events is None
                   else "ESME_RTHROTTLED" if self._throttle_left > 0 else "")
        if refusal:
            if not self._refusing_bind and self._events is not None:
                self._throttle_left -= 1
            self.actions.append(SimAction("refused", sms.reference, sms.to, detail=refusal))
            return SubmitResult(SubmitStatus.TEMPORARY, detail=refusal)
        self._reference = (self._reference + 1) % 256
        try:
            parts = split(sms.body, self._reference)
        except TooLong as exc:
            self.actions.append(SimAction("refused", sms.reference, sms.to, detail=str(exc)))
            return SubmitResult(SubmitStatus.PERMANENT, detail=str(exc))
        ids = tuple(f"sim-{next(self._ids)}" for _ in parts)
        self.actions.append(SimAction("submitted", sms.reference, sms.to, ids))
        state = (DeliveryState.UNDELIVERABLE if sms.to in self._failing
                 else DeliveryState.DELIVERED)
        loop = asyncio.get_running_loop()
        for part_id in ids:
            report = DeliveryReport(
                gateway_message_id=part_id, state=state,
                error="000" if state is DeliveryState.DELIVERED else "001",
                raw=f"id:{part_id} stat:{state.value}")
            self._timers[part_id] = loop.call_later(self.report_delay_s, self._report, report)
        return SubmitResult(SubmitStatus.ACCEPTED, part_ids=ids)

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._events = None

    def _report(self, report: DeliveryReport) -> None:
        part_id = report.gateway_message_id
        self._timers.pop(part_id or "", None)
        if self._events is None:
            return
        self.actions.append(SimAction(
            "report", part_ids=(part_id,) if part_id else (),
            detail=report.state.value if report.state else "unreadable"))
        self._events.delivery_report(report)

    def _inbound(self, message: InboundSms) -> None:
        if self._events is not None:
            self._events.inbound(message)
