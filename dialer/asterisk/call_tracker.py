"""Events in, `CallReport`s out: the pure state machine behind AMI originates.

Correlation never relies on arrival order (Asterisk 22 sends `OriginateResponse` before or
after `DialEnd`, `MixMonitorStart`, `QueueCallerJoin`):

- the originate's `ActionID` finds the attempt for `OriginateResponse`;
- the `VarSet` of the attempt variable (`FOLLOWUP_ATTEMPT=<id>`, set by the originate) ties a
  channel's `Uniqueid` to the attempt; the patient leg's later events follow by Uniqueid
  (`DialBegin`/`DialEnd` by `DestUniqueid`); agent legs share its `Linkedid` and are told
  apart by Uniqueid, so the losing agent's `Hangup` (cause 26) never ends the call.

Progress (dialled, ringing, answered, in queue, connected) is collected as it is first
seen and drained by the adapter with `drain_progress()`, which publishes it; the queue's
`AgentConnect` for the patient's channel is the only sign that a person took a handoff.

A call is finished when both its `OriginateResponse` and its patient channel's `Hangup` are
in (or the originate failed before any channel existed: unknown endpoint). After an AMI
reconnect, `rebuild()` takes the live channels (CoreShowChannels + Status) and settles the
calls whose channel vanished while we were away (reported with `outcome_certain=False`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from core.enums import CallProgress, HangupCause
from dialer.asterisk.ami_messages import (
    AgentComplete,
    AgentConnect,
    AmiEvent,
    Cdr,
    DialBegin,
    DialEnd,
    DialState,
    Hangup,
    MixMonitorStart,
    Newchannel,
    Newstate,
    OriginateResponse,
    QueueCallerJoin,
    VarSet,
)
from dialer.asterisk.dial_outcome import ChannelState, DialStatus, map_dial_outcome
from dialer.call_plan import AttemptId
from dialer.telephony import AgentLeg, CallReport

ATTEMPT_VARIABLE = "FOLLOWUP_ATTEMPT"
RECORDING_VARIABLE = "MIXMONITOR_FILENAME"


def parse_attempt_id(text: str) -> AttemptId:
    """The attempt id the engine put in the channel variable (its decimal digits)."""
    return AttemptId(int(text))


@dataclass(frozen=True, slots=True)
class LiveChannel:
    """A channel Asterisk still has, as rebuilt after a reconnect."""

    uniqueid: str
    linkedid: str | None
    channel: str
    state: int | None
    attempt_id: str | None  # its FOLLOWUP_ATTEMPT variable, if set


@dataclass
class _Leg:
    """What we know of one channel."""

    uniqueid: str
    channel: str = ""
    linkedid: str | None = None
    dialled: bool = False
    ringing: bool = False
    answered_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    cause: HangupCause | None = None
    cause_code: int | None = None
    dial_status: DialStatus | None = None
    recording: str | None = None
    mixmonitor: bool = False

    def saw_state(self, state: int | None, now: dt.datetime) -> None:
        if state == ChannelState.RINGING:
            self.ringing = True
        elif state == ChannelState.UP and self.answered_at is None:
            self.answered_at = now


@dataclass(frozen=True, slots=True)
class SeenProgress:
    """A step of a call the tracker saw for the first time."""

    attempt_id: str
    progress: CallProgress
    at: dt.datetime
    channel: str = ""
    uniqueid: str | None = None
    linkedid: str | None = None
    queue: str | None = None
    agent: str | None = None


@dataclass
class _Call:
    attempt_id: str
    action_id: str
    number_is_endpoint: bool = True
    leg: _Leg | None = None
    originate: OriginateResponse | None = None
    originate_expected: bool = True
    queue: str | None = None
    agent: AgentLeg | None = None
    details: list[str] = field(default_factory=list)
    certain: bool = True
    announced: set[CallProgress] = field(default_factory=set)


class CallTracker:
    """Follows originated calls through AMI events. Pure: no I/O, `now` is passed in."""

    def __init__(self, attempt_variable: str = ATTEMPT_VARIABLE,
                 recording_variable: str = RECORDING_VARIABLE,
                 number_is_endpoint: bool = True,
                 attempt_of: Callable[[str], AttemptId] = parse_attempt_id) -> None:
        """`attempt_of` turns the attempt variable's text back into the attempt id (the
        recorded lab traffic carries `task-1001`, the engine's originates plain digits)."""
        self._attempt_of = attempt_of
        self._number_is_endpoint = number_is_endpoint
        self._attempt_variable = attempt_variable
        self._recording_variable = recording_variable
        self._calls: dict[str, _Call] = {}  # attempt id -> call
        self._by_action: dict[str, _Call] = {}
        self._by_uniqueid: dict[str, _Call] = {}
        self._legs: dict[str, _Leg] = {}  # every live channel seen, linked or not
        self._progress: list[SeenProgress] = []

    # -- inputs ---------------------------------------------------------------------------

    def expect(self, attempt_id: str, action_id: str, *,
               number_is_endpoint: bool | None = None) -> None:
        """An originate for `attempt_id` was sent with `action_id`; `number_is_endpoint`:
        whether its dial string names the patient as an endpoint (default: the
        tracker's)."""
        if attempt_id in self._calls:
            raise ValueError(f"attempt {attempt_id} is already in flight")
        call = _Call(attempt_id, action_id, number_is_endpoint=(
            self._number_is_endpoint if number_is_endpoint is None else number_is_endpoint))
        self._calls[attempt_id] = call
        self._by_action[action_id] = call

    def cancel(self, attempt_id: str) -> None:
        """Forget an attempt whose originate was refused outright (no event will come)."""
        call = self._calls.pop(attempt_id, None)
        if call is not None:
            self._by_action.pop(call.action_id, None)

    @property
    def in_flight(self) -> frozenset[str]:
        return frozenset(self._calls)

    def drain_progress(self) -> list[SeenProgress]:
        """The progress seen since the last drain, in the order it was seen."""
        out, self._progress = self._progress, []
        return out

    def feed(self, event: AmiEvent, now: dt.datetime) -> list[CallReport]:
        """Apply one event; return the calls it finished (usually none, at most a few)."""
        finished = self._apply(event, now)
        call = self._call_of(event)
        if call is not None:
            self._announce(call, now)
        return finished

    def _call_of(self, event: AmiEvent) -> _Call | None:
        """The tracked call an event is about, if any (for progress)."""
        if isinstance(event, OriginateResponse):
            return self._by_action.get(event.action_id)
        if isinstance(event, VarSet) and event.variable == self._attempt_variable:
            return self._calls.get(event.value.strip())
        uniqueid = getattr(event, "dest_uniqueid", None) or getattr(event, "uniqueid", None)
        if isinstance(event, AgentConnect | QueueCallerJoin):
            uniqueid = event.uniqueid
        return self._by_uniqueid.get(uniqueid) if isinstance(uniqueid, str) else None

    def _announce(self, call: _Call, now: dt.datetime) -> None:
        leg = call.leg
        if leg is None:
            return
        seen = []
        if leg.dialled:
            seen.append(CallProgress.DIALLED)
        if leg.ringing:
            seen.append(CallProgress.RINGING)
        if leg.answered_at is not None:
            seen.append(CallProgress.ANSWERED)
        if call.queue is not None:
            seen.append(CallProgress.IN_QUEUE)
        if call.agent is not None:
            seen.append(CallProgress.CONNECTED)
        for progress in seen:
            if progress in call.announced:
                continue
            call.announced.add(progress)
            self._progress.append(SeenProgress(
                call.attempt_id, progress, now, channel=leg.channel, uniqueid=leg.uniqueid,
                linkedid=leg.linkedid, queue=call.queue,
                agent=call.agent.member_name if call.agent else None))

    def _apply(self, event: AmiEvent, now: dt.datetime) -> list[CallReport]:
        call: _Call | None
        if isinstance(event, OriginateResponse):
            call = self._by_action.get(event.action_id)
            if call is None:
                return []
            call.originate = event
            if event.success and event.uniqueid and call.leg is None:
                self._link(call, event.uniqueid, now)
            return self._settle(call, now)
        if isinstance(event, Newchannel | Newstate):
            if event.uniqueid is None:
                return []
            leg = self._leg(event.uniqueid)
            leg.channel = event.channel or leg.channel
            leg.linkedid = event.linkedid or leg.linkedid
            leg.dialled = leg.dialled or isinstance(event, Newchannel)
            leg.saw_state(event.state, now)
            return []
        if isinstance(event, VarSet):
            return self._varset(event, now)
        if isinstance(event, DialBegin):
            if event.dest_uniqueid is not None and event.uniqueid is None:
                self._leg(event.dest_uniqueid).dialled = True
            return []
        if isinstance(event, DialState):
            if event.dest_uniqueid is not None and event.uniqueid is None \
                    and event.status is DialStatus.RINGING:
                self._leg(event.dest_uniqueid).ringing = True
            return []
        if isinstance(event, DialEnd):
            # only the originate's own outbound leg (no calling channel); a queue's DialEnds
            # towards agents carry the patient as the calling Uniqueid and are not ours
            if event.dest_uniqueid is not None and event.uniqueid is None:
                leg = self._leg(event.dest_uniqueid)
                leg.dial_status = event.status
                if event.status is DialStatus.ANSWER and leg.answered_at is None:
                    leg.answered_at = now
            return []
        if isinstance(event, Hangup):
            return self._hangup(event, now)
        return self._call_detail(event)

    def rebuild(self, live: Iterable[LiveChannel], now: dt.datetime) -> list[CallReport]:
        """After a reconnect: adopt live channels, settle calls whose channel is gone."""
        alive: dict[str, LiveChannel] = {}
        for ch in live:
            alive[ch.uniqueid] = ch
            leg = self._leg(ch.uniqueid)
            leg.channel = ch.channel or leg.channel
            leg.linkedid = ch.linkedid or leg.linkedid
            leg.dialled = True
            leg.saw_state(ch.state, now)
            call = self._calls.get(ch.attempt_id or "")
            if call is not None and call.leg is None:
                self._link(call, ch.uniqueid, now)
        for uniqueid in [u for u in self._legs if u not in alive]:
            del self._legs[uniqueid]  # ended while we were away
        finished: list[CallReport] = []
        for call in list(self._calls.values()):
            if call.leg is None:
                # no channel ever seen and none alive: the originate failed or finished
                # unseen. Nothing was dialled as far as we can tell.
                if call.originate is None:
                    call.certain = False
                    finished.append(self._finish(call, now))
                continue
            if call.leg.uniqueid not in alive:
                call.certain = False
                call.leg.ended_at = call.leg.ended_at or now
                finished.append(self._finish(call, now))
            elif call.originate is None and call.leg.answered_at is not None:
                call.originate_expected = False  # its OriginateResponse went by unseen
        return finished

    # -- internals ------------------------------------------------------------------------

    def _leg(self, uniqueid: str) -> _Leg:
        leg = self._legs.get(uniqueid)
        if leg is None:
            leg = self._legs[uniqueid] = _Leg(uniqueid)
        return leg

    def _link(self, call: _Call, uniqueid: str, now: dt.datetime) -> None:
        call.leg = self._leg(uniqueid)
        call.leg.dialled = True
        self._by_uniqueid[uniqueid] = call

    def _varset(self, event: VarSet, now: dt.datetime) -> list[CallReport]:
        if event.uniqueid is None:
            return []
        if event.variable == self._attempt_variable:
            call = self._calls.get(event.value.strip())
            if call is not None and call.leg is None:
                self._link(call, event.uniqueid, now)
                self._leg(event.uniqueid).saw_state(event.state, now)
            return []
        if event.variable == self._recording_variable and event.value:
            self._leg(event.uniqueid).recording = event.value
        return []

    def _hangup(self, event: Hangup, now: dt.datetime) -> list[CallReport]:
        if event.uniqueid is None:
            return []
        leg = self._legs.pop(event.uniqueid, None)
        call = self._by_uniqueid.get(event.uniqueid)
        if call is None or call.leg is None or call.leg.uniqueid != event.uniqueid:
            return []
        call.leg.cause = event.cause
        call.leg.cause_code = event.cause_code
        call.leg.ended_at = now
        if leg is not None and leg is not call.leg:  # cannot happen; keep the freshest facts
            call.leg.ringing = call.leg.ringing or leg.ringing
        if event.state == ChannelState.RINGING:
            call.leg.ringing = True
        return self._settle(call, now)

    def _call_detail(self, event: AmiEvent) -> list[CallReport]:
        uniqueid = getattr(event, "uniqueid", None)
        call = self._by_uniqueid.get(uniqueid) if isinstance(uniqueid, str) else None
        if call is None or call.leg is None or call.leg.uniqueid != uniqueid:
            return []
        if isinstance(event, MixMonitorStart):
            call.leg.mixmonitor = True
        elif isinstance(event, QueueCallerJoin):
            call.queue = event.queue
        elif isinstance(event, AgentConnect):
            call.agent = AgentLeg(queue=event.queue, interface=event.interface,
                                  member_name=event.member_name, hold_time_s=event.hold_time)
        elif isinstance(event, AgentComplete):
            call.agent = AgentLeg(queue=event.queue, interface=event.interface,
                                  member_name=event.member_name, hold_time_s=event.hold_time,
                                  talk_time_s=event.talk_time, ended_by=event.reason)
        elif isinstance(event, Cdr) and event.disposition:
            call.details.append(f"cdr={event.disposition}")
        return []

    def _settle(self, call: _Call, now: dt.datetime) -> list[CallReport]:
        if call.originate is not None and not call.originate.success and call.leg is None:
            return [self._finish(call, now)]  # no channel at all: unknown endpoint
        if call.leg is not None and call.leg.ended_at is not None and (
                call.originate is not None or not call.originate_expected):
            return [self._finish(call, now)]
        return []

    def _finish(self, call: _Call, now: dt.datetime) -> CallReport:
        self._announce(call, now)
        self._calls.pop(call.attempt_id, None)
        self._by_action.pop(call.action_id, None)
        leg = call.leg
        if leg is not None:
            self._by_uniqueid.pop(leg.uniqueid, None)
        orig = call.originate
        answered = leg is not None and leg.answered_at is not None
        outcome = map_dial_outcome(
            originate_success=orig.success if orig is not None else (True if answered else None),
            reason=orig.reason if orig is not None else None,
            dial_status=leg.dial_status if leg else None,
            cause=leg.cause if leg else None,
            channel_created=leg is not None,
            ringing=bool(leg and leg.ringing),
            number_is_endpoint=call.number_is_endpoint,
        )
        details = list(call.details)
        if leg is not None and leg.dial_status:
            details.insert(0, f"dialstatus={leg.dial_status.value}")
        if orig is not None:
            details.insert(0, f"reason={int(orig.reason) if orig.reason is not None else '?'}")
        recording = leg.recording if leg is not None and (leg.mixmonitor or leg.recording) \
            else None
        return CallReport(
            attempt_id=self._attempt_of(call.attempt_id),
            outcome=outcome,
            dialled=bool(leg and leg.dialled),
            hangup_cause=leg.cause_code if leg else None,
            channel=(leg.channel if leg and leg.channel else (orig.channel if orig else "")),
            uniqueid=leg.uniqueid if leg else None,
            linkedid=leg.linkedid if leg else None,
            answered_at=leg.answered_at if leg else None,
            ended_at=(leg.ended_at if leg else None) or now,
            recording=Path(recording) if recording else None,
            queue=call.queue,
            agent=call.agent,
            outcome_certain=call.certain,
            details=tuple(details),
        )
