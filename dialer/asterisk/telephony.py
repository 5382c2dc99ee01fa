"""`AsteriskTelephony`: placing planned calls on Asterisk over AMI and following them.

`place(plan, events)`:
1. registers the attempt with the `CallTracker` *before* sending, so no event can outrun it;
2. sends `Originate` with `Async: true`, `Variable: FOLLOWUP_ATTEMPT=<attempt id>` (the id
   becomes text only here and in the AGI query string), the hospital CallerID and the ring
   timeout (never re-sent: an answer lost to a dropped link is settled by the rebuild after
   the reconnect, so a call is never dialled twice);
3. publishes the progress the tracker saw (dialled, ringing, answered, in queue, connected)
   as the events arrive;
4. returns the tracker's `CallReport` once the patient leg hung up, after the call
   recording is closed (its WAV header describes the whole file): MixMonitor sends no
   event when it closes the file, so a filed copy taken earlier would be truncated.

After every AMI reconnect the live channels are read (CoreShowChannels + Status with the
attempt variable) and the tracker rebuilt before buffered events are applied.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable

from core.clock import Clock
from core.domain import is_dialable
from core.enums import DialOutcome
from core.errors import TelephonyUnavailable
from dialer.agents import AgentListener, AgentState, AgentStatus, member_state
from dialer.asterisk.ami import AmiActionError, AmiClient, AmiConfig
from dialer.asterisk.ami_frame import AmiFrame
from dialer.asterisk.ami_messages import AmiEvent, QueueMemberRemoved, QueueMemberStatus
from dialer.asterisk.call_tracker import ATTEMPT_VARIABLE, CallTracker, LiveChannel
from dialer.call_plan import AttemptId, CallPlan, ProgressBus, ProgressEvent
from dialer.telephony import CallReport
from dialer.trunks import Trunk
from recordings.wavinfo import wav_header_complete

log = logging.getLogger(__name__)

_NAME_UNSAFE = re.compile(r'["<>\\\r\n\x00]')
_ID_SAFE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_AGENT = re.compile(r"(PJSIP|SIP|IAX2|Local)/[A-Za-z0-9_.@-]{1,64}")


@dataclasses.dataclass(frozen=True, slots=True)
class OriginatePlan:
    """Where originated calls go: the default trunk (a call may name another) and the
    dialplan entry point."""

    trunk: Trunk = dataclasses.field(default_factory=lambda: Trunk("carrier"))
    context: str = "followup"
    exten: str = "s"
    attempt_variable: str = ATTEMPT_VARIABLE
    max_call_s: float = 3 * 3600.0  # a call still open after this is given up on
    recording_close_s: float = 15.0  # how long to wait for MixMonitor to close the file


def caller_id(name: str, number: str) -> str:
    """`"Name" <number>` with anything that would break the header or the quoting removed."""
    if not is_dialable(number):
        raise ValueError(f"invalid caller id number {number!r}")
    clean = _NAME_UNSAFE.sub("", name).strip()
    return f'"{clean}" <{number}>' if clean else number


class AsteriskTelephony:
    """Places calls through one Asterisk. Build with `AmiConfig`, start, then `place()`."""

    def __init__(self, config: AmiConfig, clock: Clock, plan: OriginatePlan | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self._plan = plan or OriginatePlan()
        self._tracker = CallTracker(attempt_variable=self._plan.attempt_variable)
        self._waiters: dict[str, asyncio.Future[CallReport]] = {}
        self._buses: dict[str, ProgressBus] = {}
        self._buffer: list[AmiEvent] = []
        self._agents: AgentListener | None = None
        self._client = AmiClient(config, self._on_event, self._on_connected)

    @property
    def client(self) -> AmiClient:
        return self._client

    @property
    def in_flight(self) -> frozenset[str]:
        return self._tracker.in_flight

    @property
    def connected(self) -> bool:
        return self._client.connected

    async def start(self, *, must_connect: bool = True) -> None:
        await self._client.start(must_connect=must_connect)

    async def close(self) -> None:
        await self._client.close()
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(TelephonyUnavailable("telephony closed"))

    def originate_headers(self, plan: CallPlan, trunk: Trunk | None = None
                          ) -> list[tuple[str, str]] | None:
        """The Originate headers for `plan` through `trunk` (default: the plan's), or None
        when the number is not one the trunk can dial (an outcome, `invalid_number`, not
        an exception)."""
        trunk = trunk or self._plan.trunk
        try:
            channel = trunk.dial_string(plan.phone)
        except ValueError:
            return None
        headers = [
            ("Channel", channel),
            ("Context", self._plan.context), ("Exten", self._plan.exten), ("Priority", "1"),
            ("Timeout", str(int(plan.ring_timeout_s * 1000))), ("Async", "true"),
            ("Variable", f"{self._plan.attempt_variable}={plan.attempt_id}"),
            ("Variable", f"FOLLOWUP_TASK={plan.task.task_id}"),
            ("Variable", f"FOLLOWUP_LOCALE={plan.locale}"),
        ]
        shown = trunk.caller_id or plan.caller_id
        if shown:  # none configured: the trunk's own number is shown
            headers.append(("CallerID", caller_id(plan.caller_name, shown)))
        AmiFrame.build(*headers).to_bytes()  # refuses line breaks before anything happens
        return headers

    async def place(self, plan: CallPlan, events: ProgressBus,
                    trunk: Trunk | None = None) -> CallReport:
        """Dial `plan.phone` through `trunk` (default: the plan's) and follow the call to
        its end, publishing its progress.

        Raises `TelephonyUnavailable` if AMI is down *before* anything was sent (the attempt
        did not happen). Busy, no answer, a number the trunk cannot dial and the like come
        back as report outcomes.
        """
        key = str(plan.attempt_id)
        trunk = trunk or self._plan.trunk
        headers = self.originate_headers(plan, trunk)
        if headers is None:
            return CallReport(attempt_id=plan.attempt_id, outcome=DialOutcome.INVALID_NUMBER,
                              dialled=False, ended_at=self._clock.now(),
                              details=(f"not dialable: {plan.phone!r}",))
        if not self._client.connected:
            raise TelephonyUnavailable("AMI not connected")
        action_id = self._client.next_action_id("originate")
        future: asyncio.Future[CallReport] = asyncio.get_running_loop().create_future()
        self._waiters[key] = future
        self._buses[key] = events
        self._tracker.expect(key, action_id, number_is_endpoint=trunk.number_is_endpoint)
        try:
            report = await self._originate_and_wait(plan.attempt_id, action_id, headers,
                                                    future)
        finally:
            self._waiters.pop(key, None)
            self._buses.pop(key, None)
            if not future.done():  # cancelled by our caller: stop following the call
                self._tracker.cancel(key)
        if report.recording is not None:
            report = await self._closed_recording(report)
        return report

    async def _closed_recording(self, report: CallReport) -> CallReport:
        """Wait until MixMonitor has closed the call's file (its header is final)."""
        path = report.recording
        assert path is not None
        if not await asyncio.to_thread(path.exists):
            # e.g. Asterisk writes to a folder this host does not share: nothing to file
            log.warning("attempt %s: recording %s is not here", report.attempt_id, path)
            return report
        waited = 0.0
        while not await asyncio.to_thread(wav_header_complete, path):
            if waited >= self._plan.recording_close_s:
                log.error("attempt %s: recording %s still open after %.0fs; filed as is",
                          report.attempt_id, path, waited)
                return dataclasses.replace(report, details=(
                    *report.details, "recording not closed"))
            await self._sleep(0.1)
            waited += 0.1
        return report

    async def _originate_and_wait(self, attempt_id: AttemptId, action_id: str,
                                  headers: list[tuple[str, str]],
                                  future: asyncio.Future[CallReport]) -> CallReport:
        try:
            await self._client.send_action("Originate", *headers, action_id=action_id)
        except AmiActionError as exc:
            # Asterisk refused the action itself: nothing was dialled, and the same action
            # would be refused again (a bad setting, a missing module): an error, counted
            self._tracker.cancel(str(attempt_id))
            log.warning("originate refused for attempt %s: %s", attempt_id, exc)
            return CallReport(attempt_id=attempt_id, outcome=DialOutcome.ERROR,
                              dialled=False, ended_at=self._clock.now(), details=(str(exc),))
        except TelephonyUnavailable:
            # maybe sent, the answer lost with the link: the rebuild after the reconnect
            # finds the call's channel (or settles it as never seen); wait for that
            log.warning("AMI dropped while originating attempt %s; waiting for the rebuild",
                        attempt_id)
        try:
            return await asyncio.wait_for(asyncio.shield(future), self._plan.max_call_s)
        except TimeoutError:
            self._tracker.cancel(str(attempt_id))
            return CallReport(attempt_id=attempt_id, outcome=DialOutcome.ERROR,
                              dialled=True, ended_at=self._clock.now(), outcome_certain=False,
                              details=(f"still up after {self._plan.max_call_s:.0f}s",))

    # -- AMI callbacks --------------------------------------------------------------------

    def watch_agents(self, listener: AgentListener) -> None:
        """Report the queue members' states to `listener`: all of them after each connect,
        then each change as AMI announces it."""
        self._agents = listener

    def _agent_event(self, event: QueueMemberStatus | QueueMemberRemoved) -> None:
        if self._agents is None:
            return
        state = AgentState.UNAVAILABLE if isinstance(event, QueueMemberRemoved) else \
            member_state(event.status, event.paused, event.in_call)
        self._agents(AgentStatus(event.queue, event.member_name or event.interface, state,
                                 self._clock.now()))

    def _on_event(self, event: AmiEvent) -> None:
        if isinstance(event, QueueMemberStatus | QueueMemberRemoved):
            self._agent_event(event)
            return
        if not self._client.connected:
            self._buffer.append(event)  # until the rebuild after a (re)connect is done
            return
        self._deliver(self._tracker.feed(event, self._clock.now()))

    async def _on_connected(self, client: AmiClient) -> None:
        if self._agents is not None:
            try:
                for member in await client.queue_members():
                    self._agent_event(member)
            except (AmiActionError, TelephonyUnavailable) as exc:  # wait for the next change
                log.warning("cannot read the queues' members after connecting: %s", exc)
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
        for seen in self._tracker.drain_progress():
            bus = self._buses.get(seen.attempt_id)
            if bus is not None:
                bus.publish(ProgressEvent(
                    AttemptId(int(seen.attempt_id)), seen.progress, seen.at,
                    channel=seen.channel, uniqueid=seen.uniqueid, linkedid=seen.linkedid,
                    queue=seen.queue, agent=seen.agent))
        for report in reports:
            fut = self._waiters.get(str(report.attempt_id))
            if fut is not None and not fut.done():
                fut.set_result(report)
