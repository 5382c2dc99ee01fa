"""The `SmsGateway` seam: what the sender may do with an SMS gateway, as typed values.

Implemented by the SMPP 3.4 adapter (`messaging.smpp`), the Tencent Cloud SMS adapter
(`messaging.tencent_sms`) and the sim (`messaging.sim`). A gateway splits a long body into
parts itself (GSM-7 or UCS-2, `core.sms_text`) and answers one id per part (a cloud service
that bills the parts but reports the message as one answers one id); delivery reports and
inbound messages arrive through the `GatewayEvents` given to `start`, on the event loop, in
the order the gateway sent them.
A submit never raises for a refusal: a temporary problem (throttled, not bound, a timeout)
and a permanent one (an invalid number) are outcomes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class OutgoingSms:
    """One message to submit. A gateway that sends the text it has on file for each
    template (Tencent Cloud SMS: an approved template id and its parameters) reads
    `template` and `params`; the others send `body`."""

    reference: int  # our message id (sms_messages.id), for logs
    to: str  # E.164
    body: str
    template: str = ""  # the key of the template `body` was rendered from (core.sms_templates)
    # that template's values in `body`, in the order its text names them, {hospital} left
    # out (`SmsTemplate.params`); None when `body` does not read as the template's text
    params: tuple[str, ...] | None = ()


class SubmitStatus(enum.StrEnum):
    ACCEPTED = "accepted"  # every part was taken; the ids are in `part_ids`
    TEMPORARY = "temporary"  # try again later (throttled, bind refused, link down, timeout)
    PERMANENT = "permanent"  # refused for good (e.g. an invalid destination)


@dataclass(frozen=True, slots=True)
class SubmitResult:
    status: SubmitStatus
    part_ids: tuple[str, ...] = ()  # the gateway's message id of each part, in order
    detail: str = ""  # the gateway's words for a refusal (e.g. "ESME_RTHROTTLED")


class DeliveryState(enum.StrEnum):
    """A delivery report's final state (SMPP 3.4 appendix B `stat:` values)."""

    DELIVERED = "DELIVRD"
    EXPIRED = "EXPIRED"
    DELETED = "DELETED"
    UNDELIVERABLE = "UNDELIV"
    ACCEPTED = "ACCEPTD"  # taken by the handset's network; not final
    UNKNOWN = "UNKNOWN"
    REJECTED = "REJECTD"
    ENROUTE = "ENROUTE"  # not final

    @property
    def final(self) -> bool:
        return self not in (DeliveryState.ACCEPTED, DeliveryState.ENROUTE)


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """A delivery report for one part. `state` is None when the report could not be read
    (kept raw and logged by the sender, never a crash)."""

    gateway_message_id: str | None
    state: DeliveryState | None
    error: str | None  # the report's `err:` code, if any
    raw: str  # the report as received, for the record


@dataclass(frozen=True, slots=True)
class InboundSms:
    """A message a phone sent to the hospital's number (an SMPP MO)."""

    sender: str  # as the gateway gave it (not always E.164)
    body: str
    raw: str


class GatewayEvents(Protocol):
    """Where a gateway hands what arrives unasked. Called on the event loop."""

    def delivery_report(self, report: DeliveryReport) -> None: ...

    def inbound(self, message: InboundSms) -> None: ...


class SmsGateway(Protocol):
    """One SMS gateway connection (bound, kept alive and re-bound by the adapter)."""

    @property
    def name(self) -> str:
        """The gateway's configured name (stored on each message and part)."""
        ...

    async def start(self, events: GatewayEvents) -> None:
        """Connect and bind; keep reconnecting in the background after a failure."""
        ...

    async def submit(self, sms: OutgoingSms) -> SubmitResult:
        """Submit every part of `sms`, asking for a delivery report on each."""
        ...

    async def close(self) -> None:
        """Unbind and disconnect."""
        ...
