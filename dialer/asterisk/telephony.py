"""`AsteriskTelephony`: the `dialer.Telephony` seam on Asterisk (AMI originate + FastAGI IVR).

`place(call)`:
1. registers the attempt with the `CallTracker` *before* sending, so no event can outrun it;
2. sends `Originate` with `Async: true`, `Variable: FOLLOWUP_ATTEMPT=<attempt id>`, the
   hospital CallerID and the ring timeout (never re-sent: an answer lost to a dropped link
   is settled by the rebuild after the reconnect, so a call is never dialled twice);
3. waits for the tracker's `CallReport` (the patient leg hung up), then for the IVR result
   the FastAGI handler posted to the `IvrResultBoard` for that attempt.

After every AMI reconnect the live channels are read (CoreShowChannels + Status with the
attempt variable) and the tracker rebuilt before buffered events are applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re

from core.clock import Clock
from core.enums import DialOutcome
from core.errors import TelephonyUnavailable
from dialer.asterisk.ami import AmiActionError, AmiClient, AmiConfig
from dialer.asterisk.ami_frame import AmiFrame
from dialer.asterisk.ami_messages import AmiEvent
from dialer.asterisk.call_tracker import ATTEMPT_VARIABLE, CallTracker, LiveChannel
from dialer.telephony import CallReport, CallRequest, IvrResult

log = logging.getLogger(__name__)

_PHONE = re.compile(r"^\+?[0-9]{2,20}$")
_NAME_UNSAFE = re.compile(r'["<>\\\r\n\x00]')
_ID_SAFE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_AGENT = re.compile(r"(PJSIP|SIP|IAX2|Local)/[A-Za-z0-9_.@-]{1,64}")


class IvrResultBoard:
    """Where FastAGI sessions post what the IVR did, for `place()` to pick up by attempt."""

    def __init__(self) -> None:
        self._results: dict[str, IvrResult] = {}
        self._waiters: dict[str, asyncio.Event] = {}

    MAX_UNCLAIMED = 10_000  # results posted after their call was reported are dropped

    def post(self, attempt_id: str, result: IvrResult) -> None:
        self._results[attempt_id] = result
        self._waiters.setdefault(attempt_id, asyncio.Event()).set()
        while len(self._results) > self.MAX_UNCLAIMED:
            oldest = next(iter(self._results))
            log.warning("IVR result for attempt %s was never collected", oldest)
            del self._results[oldest]
            self._waiters.pop(oldest, None)

    async def take(self, attempt_id: str, timeout_s: float) -> IvrResult | None:
        """The posted result, waiting up to `timeout_s` for it; None if none came."""
        event = self._waiters.setdefault(attempt_id, asyncio.Event())
        if attempt_id not in self._results and timeout_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout_s)
        self._waiters.pop(attempt_id, None)
        return self._results.pop(attempt_id, None)


@dataclasses.dataclass(frozen=True, slots=True)
class OriginatePlan:
    """Where originated calls go: the dial string and the dialplan entry point."""

    dial_template: str = "PJSIP/{number}@{trunk}"
    trunk: str = "carrier"
    context: str = "followup"
    exten: str = "s"
    attempt_variable: str = ATTEMPT_VARIABLE
    ivr_grace_s: float = 5.0  # how long to wait for the IVR result after the hangup
    max_call_s: float = 3 * 3600.0  # a call still open after this is given up on
    agent_ring_s: float = 30.0  # click-to-call: how long the agent's phone rings

    @property
    def number_is_endpoint(self) -> bool:
        """Dialling `PJSIP/{number}` (no trunk): the number names an endpoint."""
        return "@" not in self.dial_template and "{trunk}" not in self.dial_template

    def dial_string(self, phone: str) -> str:
        if not _PHONE.fullmatch(phone):
            raise ValueError(f"not a dialable number: {phone!r}")
        return self.dial_template.format(number=phone, trunk=self.trunk)


def caller_id(name: str, number: str) -> str:
    """`"Name" <number>` with anything that would break the header or the quoting removed."""
    if not _PHONE.fullmatch(number):
        raise ValueError(f"invalid caller id number {number!r}")
    clean = _NAME_UNSAFE.sub("", name).strip()
    return f'"{clean}" <{number}>' if clean else number


class AsteriskTelephony:
    """Places calls through one Asterisk. Build with `AmiConfig`, start, then `place()`."""

    def __init__(self, config: AmiConfig, clock: Clock, board: IvrResultBoard,
                 plan: OriginatePlan | None = None) -> None:
        self._clock = clock
        self._board = board
        self._plan = plan or OriginatePlan()
        self._tracker = CallTracker(attempt_variable=self._plan.attempt_variable,
                                    number_is_endpoint=self._plan.number_is_endpoint)
        self._waiters: dict[str, asyncio.Future[CallReport]] = {}
        self._buffer: list[AmiEvent] = []
        self._client = AmiClient(config, self._on_event, self._on_connected)

    @property
    def client(self) -> AmiClient:
        return self._client

    @property
    def in_flight(self) -> frozenset[str]:
        return self._tracker.in_flight

    async def start(self) -> None:
        await self._client.start()

    async def close(self) -> None:
        await self._client.close()
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(TelephonyUnavailable("telephony closed"))

    async def place(self, call: CallRequest) -> CallReport:
        """Dial `call.phone` and follow the call to its end.

        Raises `TelephonyUnavailable` if AMI is down *before* anything was sent (the attempt
        did not happen). Busy, no answer and the like come back as report outcomes.
        """
        if not _ID_SAFE.fullmatch(call.attempt_id):
            raise ValueError(f"unsafe attempt id {call.attempt_id!r}")
        if not self._client.connected:
            raise TelephonyUnavailable("AMI not connected")
        headers = [
            ("Channel", self._plan.dial_string(call.phone)),
            ("Context", self._plan.context), ("Exten", self._plan.exten), ("Priority", "1"),
            ("Timeout", str(int(call.timeout_s * 1000))), ("Async", "true"),
            ("Variable", f"{self._plan.attempt_variable}={call.attempt_id}"),
            ("Variable", f"FOLLOWUP_TASK={call.task_id}"),
            ("Variable", f"FOLLOWUP_LOCALE={call.locale}"),
        ]
        headers += [("Variable", f"{k}={v}") for k, v in call.variables]
        if call.caller_id:  # none configured: the trunk's own number is shown
            headers.append(("CallerID", caller_id(call.caller_name, call.caller_id)))
        AmiFrame.build(*headers).to_bytes()  # refuses line breaks before anything happens
        action_id = self._client.next_action_id("originate")
        future: asyncio.Future[CallReport] = asyncio.get_running_loop().create_future()
        self._waiters[call.attempt_id] = future
        self._tracker.expect(call.attempt_id, action_id)
        try:
            report = await self._originate_and_wait(call, action_id, headers, future)
        finally:
            self._waiters.pop(call.attempt_id, None)
            if not future.done():  # cancelled by our caller: stop following the call
                self._tracker.cancel(call.attempt_id)
        # an answered call waits a moment for its IVR result; any other takes what is
        # there (an IVR may have run on a call whose answer we did not see), so the board
        # never keeps results nobody will collect
        grace = self._plan.ivr_grace_s if report.answered_at is not None else 0.0
        ivr = await self._board.take(call.attempt_id, grace)
        if ivr is not None:
            report = dataclasses.replace(report, ivr=ivr)
        return report

    async def _originate_and_wait(self, call: CallRequest, action_id: str,
                                  headers: list[tuple[str, str]],
                                  future: asyncio.Future[CallReport]) -> CallReport:
        try:
            await self._client.send_action("Originate", *headers, action_id=action_id)
        except AmiActionError as exc:
            # Asterisk refused the action itself: nothing was dialled
            self._tracker.cancel(call.attempt_id)
            log.warning("originate refused for attempt %s: %s", call.attempt_id, exc)
            return CallReport(attempt_id=call.attempt_id, outcome=DialOutcome.FAILED,
                              dialled=False, ended_at=self._clock.now(), details=(str(exc),))
        except TelephonyUnavailable:
            # maybe sent, the answer lost with the link: the rebuild after the reconnect
            # finds the call's channel (or settles it as never seen); wait for that
            log.warning("AMI dropped while originating attempt %s; waiting for the rebuild",
                        call.attempt_id)
        try:
            return await asyncio.wait_for(asyncio.shield(future), self._plan.max_call_s)
        except TimeoutError:
            self._tracker.cancel(call.attempt_id)
            return CallReport(attempt_id=call.attempt_id, outcome=DialOutcome.FAILED,
                              dialled=True, ended_at=self._clock.now(), outcome_certain=False)

    async def click_to_call(self, agent_interface: str, phone: str, ticket_id: str,
                            caller_id_number: str, caller_name: str = "") -> str:
        """Ring the agent's softphone first; once the agent answers, the dialplan
        (`[followup-callback]`) dials the patient and records the call. Returns the
        originate's ActionID. Raises `TelephonyUnavailable` when AMI is down."""
        if not _AGENT.fullmatch(agent_interface):
            raise ValueError(f"not an agent interface: {agent_interface!r}")
        if not _ID_SAFE.fullmatch(ticket_id):
            raise ValueError(f"unsafe ticket id {ticket_id!r}")
        self._plan.dial_string(phone)  # validates the number
        action_id = self._client.next_action_id("callback")
        await self._client.send_action(
            "Originate", ("Channel", agent_interface), ("Context", "followup-callback"),
            ("Exten", phone), ("Priority", "1"), ("Async", "true"),
            ("CallerID", caller_id(caller_name, caller_id_number)),
            ("Timeout", str(int(self._plan.agent_ring_s * 1000))),
            ("Variable", f"FOLLOWUP_TICKET={ticket_id}"), action_id=action_id)
        return action_id

    # -- AMI callbacks --------------------------------------------------------------------

    def _on_event(self, event: AmiEvent) -> None:
        if not self._client.connected:
            self._buffer.append(event)  # until the rebuild after a (re)connect is done
            return
        self._deliver(self._tracker.feed(event, self._clock.now()))

    async def _on_connected(self, client: AmiClient) -> None:
        if self._tracker.in_flight:
            try:
                channels, statuses = await client.live_channels(self._plan.attempt_variable)
            except AmiActionError as exc:
                # e.g. the AMI user lacks `reporting`/`call` write: follow the live events
                # only; calls that ended while we were away stay open until max_call_s
                log.error("cannot rebuild calls after the AMI reconnect: %s", exc)
                self._flush_buffer()
                return
            attempts = {s.uniqueid: s.variable(self._plan.attempt_variable) for s in statuses}
            live = [LiveChannel(c.uniqueid, c.linkedid, c.channel, c.state,
                                attempts.get(c.uniqueid) or None)
                    for c in channels if c.uniqueid is not None]
            settled = self._tracker.rebuild(live, self._clock.now())
            log.info("AMI reconnected: %d live channels, %d calls settled unseen",
                     len(live), len(settled))
            self._deliver(settled)
        self._flush_buffer()

    async def live_attempts(self) -> set[str]:
        """Attempt ids of the calls Asterisk has up right now (for settling what a dialer
        that died left behind: those calls are still going, the others are not)."""
        channels, statuses = await self._client.live_channels(self._plan.attempt_variable)
        del channels
        return {a for s in statuses if (a := s.variable(self._plan.attempt_variable))}

    def _flush_buffer(self) -> None:
        buffered, self._buffer = self._buffer, []
        for event in buffered:
            self._deliver(self._tracker.feed(event, self._clock.now()))

    def _deliver(self, reports: list[CallReport]) -> None:
        for report in reports:
            fut = self._waiters.get(report.attempt_id)
            if fut is not None and not fut.done():
                fut.set_result(report)

