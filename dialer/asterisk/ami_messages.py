"""AMI events and responses as typed frozen dataclasses, parsed right at the edge.

`parse_event(frame)` returns one of the event types below, or None for events the engine
does not use (RTCPSent, Newexten, DeviceStateChange, ...). Values Asterisk writes as
`<unknown>` become None. Numbers that fail to parse become None, never an exception:
a garbled event is dropped, it does not crash the client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.enums import HangupCause
from dialer.asterisk.ami_frame import AmiFrame
from dialer.asterisk.dial_outcome import ChannelState, DialStatus, OriginateReason

UNKNOWN = "<unknown>"


def _id(raw: str | None) -> str | None:
    if raw is None:
        return None
    raw = raw.strip()
    return None if raw in ("", UNKNOWN) else raw


def _int(raw: str | None) -> int | None:
    if raw is None:
        return None
    raw = raw.strip()
    if raw.isascii() and raw.lstrip("-").isdigit():  # "¹".isdigit() is True
        return int(raw)
    return None


def _str(raw: str | None) -> str:
    return "" if raw is None else raw


@dataclass(frozen=True, slots=True)
class ActionResponse:
    """The direct answer to an action (`Response: Success|Error|Goodbye`)."""

    action_id: str
    success: bool
    message: str
    fields: tuple[tuple[str, str], ...] = ()

    def field(self, name: str) -> str | None:
        low = name.lower()
        for k, v in self.fields:
            if k.lower() == low:
                return v
        return None


def parse_response(frame: AmiFrame) -> ActionResponse | None:
    if frame.response is None or frame.event is not None:
        return None
    status = frame.response.strip()
    return ActionResponse(action_id=_str(frame.action_id),
                          success=status in ("Success", "Goodbye", "Follows"),
                          message=_str(frame.get("Message")), fields=frame.headers)


@dataclass(frozen=True, slots=True)
class ChannelEvent:
    """Fields every channel event carries."""

    channel: str
    uniqueid: str | None
    linkedid: str | None
    state: ChannelState | None


@dataclass(frozen=True, slots=True)
class FullyBooted:
    pass


@dataclass(frozen=True, slots=True)
class Shutdown:
    pass


@dataclass(frozen=True, slots=True)
class OriginateResponse:
    action_id: str
    success: bool
    reason: OriginateReason | None
    channel: str  # the dial string on failure (PJSIP/1002), the real channel on success
    uniqueid: str | None  # None for `<unknown>` (every failure)


@dataclass(frozen=True, slots=True)
class Newchannel(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True)
class Newstate(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True)
class VarSet(ChannelEvent):
    variable: str
    value: str


@dataclass(frozen=True, slots=True)
class DialBegin:
    uniqueid: str | None  # the calling channel (None for an originate's outbound leg)
    dest_uniqueid: str | None


@dataclass(frozen=True, slots=True)
class DialState:
    uniqueid: str | None
    dest_uniqueid: str | None
    status: DialStatus | None


@dataclass(frozen=True, slots=True)
class DialEnd:
    uniqueid: str | None
    dest_uniqueid: str | None
    status: DialStatus | None


@dataclass(frozen=True, slots=True)
class Hangup(ChannelEvent):
    cause: HangupCause | None
    cause_code: int | None  # the raw number, also when it is not in HangupCause


@dataclass(frozen=True, slots=True)
class QueueCallerJoin(ChannelEvent):
    queue: str
    position: int | None


@dataclass(frozen=True, slots=True)
class QueueCallerAbandon(ChannelEvent):
    queue: str
    hold_time: int | None


@dataclass(frozen=True, slots=True)
class QueueMemberStatus:
    """A queue member's state (`QueueMemberStatus`, `QueueMemberAdded`, `QueueMemberPause`,
    and the `QueueMember` items of a `QueueStatus` list)."""

    queue: str
    member_name: str
    interface: str
    status: int | None  # Asterisk's device state number
    paused: bool
    in_call: bool


@dataclass(frozen=True, slots=True)
class QueueMemberRemoved:
    queue: str
    member_name: str
    interface: str


@dataclass(frozen=True, slots=True)
class AgentConnect(ChannelEvent):
    queue: str
    interface: str
    member_name: str
    dest_uniqueid: str | None
    hold_time: int | None
    ring_time: int | None


@dataclass(frozen=True, slots=True)
class AgentComplete(ChannelEvent):
    queue: str
    interface: str
    member_name: str
    hold_time: int | None
    talk_time: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class MixMonitorStart(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True)
class DTMFEnd(ChannelEvent):
    digit: str
    direction: str
    duration_ms: int | None


@dataclass(frozen=True, slots=True)
class Cdr:
    uniqueid: str | None
    channel: str
    disposition: str
    duration: int | None


@dataclass(frozen=True, slots=True)
class CoreShowChannel(ChannelEvent):
    action_id: str
    application: str
    duration: str


@dataclass(frozen=True, slots=True)
class ChannelStatus(ChannelEvent):
    """One `Status` event; `variables` holds the ones the action asked for."""

    action_id: str
    variables: tuple[tuple[str, str], ...]

    def variable(self, name: str) -> str | None:
        for k, v in self.variables:
            if k == name:
                return v
        return None


@dataclass(frozen=True, slots=True)
class ListComplete:
    """`CoreShowChannelsComplete`, `StatusComplete`, ...: the end of an event list."""

    action_id: str
    name: str
    items: int | None


AmiEvent = (FullyBooted | Shutdown | OriginateResponse | Newchannel | Newstate | VarSet
            | DialBegin | DialState | DialEnd | Hangup | QueueCallerJoin | QueueCallerAbandon
            | AgentConnect | AgentComplete | QueueMemberStatus | QueueMemberRemoved
            | MixMonitorStart | DTMFEnd | Cdr | CoreShowChannel
            | ChannelStatus | ListComplete)


def _chan(f: AmiFrame) -> tuple[str, str | None, str | None, ChannelState | None]:
    return (_str(f.get("Channel")), _id(f.get("Uniqueid")), _id(f.get("Linkedid")),
            ChannelState.parse(f.get("ChannelState")))


def _status_variables(f: AmiFrame) -> tuple[tuple[str, str], ...]:
    out = []
    for raw in f.get_all("Variable"):
        name, sep, value = raw.partition("=")
        if sep:
            out.append((name, value))
    return tuple(out)


def _originate_response(f: AmiFrame) -> OriginateResponse:
    return OriginateResponse(action_id=_str(f.action_id),
                             success=_str(f.response).strip() == "Success",
                             reason=OriginateReason.parse(f.get("Reason")),
                             channel=_str(f.get("Channel")), uniqueid=_id(f.get("Uniqueid")))


def _member(f: AmiFrame) -> QueueMemberStatus:
    return QueueMemberStatus(queue=_str(f.get("Queue")),
                             member_name=_str(f.get("MemberName") or f.get("Name")),
                             interface=_str(f.get("Interface") or f.get("Location")),
                             status=_int(f.get("Status")),
                             paused=_str(f.get("Paused")).strip() == "1",
                             in_call=_str(f.get("InCall")).strip() == "1")


def _hangup(f: AmiFrame) -> Hangup:
    raw = f.get("Cause")
    return Hangup(*_chan(f), cause=HangupCause.parse(raw), cause_code=_int(raw))


_PARSERS: dict[str, Callable[[AmiFrame], AmiEvent]] = {
    "fullybooted": lambda f: FullyBooted(),
    "shutdown": lambda f: Shutdown(),
    "originateresponse": _originate_response,
    "newchannel": lambda f: Newchannel(*_chan(f)),
    "newstate": lambda f: Newstate(*_chan(f)),
    "varset": lambda f: VarSet(*_chan(f), variable=_str(f.get("Variable")),
                               value=_str(f.get("Value"))),
    "dialbegin": lambda f: DialBegin(uniqueid=_id(f.get("Uniqueid")),
                                     dest_uniqueid=_id(f.get("DestUniqueid"))),
    "dialstate": lambda f: DialState(uniqueid=_id(f.get("Uniqueid")),
                                     dest_uniqueid=_id(f.get("DestUniqueid")),
                                     status=DialStatus.parse(f.get("DialStatus"))),
    "dialend": lambda f: DialEnd(uniqueid=_id(f.get("Uniqueid")),
                                 dest_uniqueid=_id(f.get("DestUniqueid")),
                                 status=DialStatus.parse(f.get("DialStatus"))),
    "hangup": _hangup,
    "queuecallerjoin": lambda f: QueueCallerJoin(*_chan(f), queue=_str(f.get("Queue")),
                                                 position=_int(f.get("Position"))),
    "queuecallerabandon": lambda f: QueueCallerAbandon(
        *_chan(f), queue=_str(f.get("Queue")), hold_time=_int(f.get("HoldTime"))),
    "agentconnect": lambda f: AgentConnect(
        *_chan(f), queue=_str(f.get("Queue")), interface=_str(f.get("Interface")),
        member_name=_str(f.get("MemberName")), dest_uniqueid=_id(f.get("DestUniqueid")),
        hold_time=_int(f.get("HoldTime")), ring_time=_int(f.get("RingTime"))),
    "agentcomplete": lambda f: AgentComplete(
        *_chan(f), queue=_str(f.get("Queue")), interface=_str(f.get("Interface")),
        member_name=_str(f.get("MemberName")), hold_time=_int(f.get("HoldTime")),
        talk_time=_int(f.get("TalkTime")), reason=_str(f.get("Reason"))),
    "queuememberstatus": _member,
    "queuememberadded": _member,
    "queuememberpause": _member,
    "queuemember": _member,
    "queuememberremoved": lambda f: QueueMemberRemoved(
        queue=_str(f.get("Queue")), member_name=_str(f.get("MemberName")),
        interface=_str(f.get("Interface"))),
    "mixmonitorstart": lambda f: MixMonitorStart(*_chan(f)),
    "dtmfend": lambda f: DTMFEnd(*_chan(f), digit=_str(f.get("Digit")),
                                 direction=_str(f.get("Direction")),
                                 duration_ms=_int(f.get("DurationMs"))),
    "cdr": lambda f: Cdr(uniqueid=_id(f.get("UniqueID")), channel=_str(f.get("Channel")),
                         disposition=_str(f.get("Disposition")).strip(),
                         duration=_int(f.get("Duration"))),
    "coreshowchannel": lambda f: CoreShowChannel(
        *_chan(f), action_id=_str(f.action_id), application=_str(f.get("Application")),
        duration=_str(f.get("Duration"))),
    "status": lambda f: ChannelStatus(*_chan(f), action_id=_str(f.action_id),
                                      variables=_status_variables(f)),
}


def event_is_used(name: str) -> bool:
    """Whether `parse_event` makes anything of an event of this name (the others are
    dropped unparsed: most of what Asterisk sends about a call is of no use here)."""
    key = name.strip().lower()
    return key in _PARSERS or key.endswith("complete")


def parse_event(frame: AmiFrame) -> AmiEvent | None:
    """The typed event for `frame`, or None when the engine does not use this event."""
    name = frame.event
    if name is None:
        return None
    key = name.strip().lower()
    parser = _PARSERS.get(key)
    if parser is not None:
        return parser(frame)
    if key.endswith("complete"):
        return ListComplete(action_id=_str(frame.action_id), name=name.strip(),
                            items=_int(frame.get("ListItems")))
    return None
