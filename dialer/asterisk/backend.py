"""The Asterisk telephony backend, assembled: AMI originates on one or several servers,
over one or several trunks, + the shared FastAGI server + the IVR.

`AsteriskBackend` is a `dialer.Telephony`: `place(plan, events)` picks the trunks that take
the number (`dialer.trunks`), holds a channel on the best one with a free channel and on the
connected server with the most free channels (`servers.ServerPool`), and originates there
through AMI. A trunk fault (congestion, the trunk unreachable) moves the call to the next
trunk; what the failed try published is dropped (`ProgressHold`: the patient's number was
never reached), and when every trunk faulted the attempt is `failed`, not the patient's.
When the patient answers, the dialplan opens a FastAGI session (whichever server it comes
from), which finds its plan among the calls in flight (`?attempt=` query, else the
FOLLOWUP_ATTEMPT variable) and runs the IVR from it. When the IVR handed the call to a
queue and nobody there took it, the dialplan opens a second session
(`?attempt=..&handoff=<QUEUESTATUS>`) that tells the patient what happens now. `place()`
returns once the patient's leg is gone and every AGI session of the call has ended, so the
IVR's result is on the plan. A session for an attempt this process is not dialling (a
restart, a stray call) is ended politely and logged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

from core.clock import Clock
from core.enums import DialOutcome
from core.settings import AsteriskSettings
from dialer.agents import AgentListener
from dialer.asterisk.agi import AgiRequest
from dialer.asterisk.agi_channel import AgiChannel
from dialer.asterisk.ami import AmiConfig
from dialer.asterisk.fastagi import FastAgiServer
from dialer.asterisk.servers import ServerLink, ServerPool
from dialer.asterisk.telephony import AsteriskTelephony, OriginatePlan
from dialer.call_handler import CallHandler
from dialer.call_plan import CallPlan, ProgressBus
from dialer.pacing import Sleep
from dialer.telephony import CallReport
from dialer.trunks import ProgressHold, Trunk, TrunkLines, is_trunk_fault
from ivr.channel import Prompt

log = logging.getLogger(__name__)

HANDOFF_PARAMETER = "handoff"


class AsteriskBackend:
    """`from_settings(...)`; `start()`, then `place()` calls; `close()` at the end."""

    def __init__(self, servers: ServerPool, trunks: TrunkLines, clock: Clock,
                 handler: CallHandler, agi_host: str, agi_port: int, clip_dir: Path,
                 goodbye: Prompt | None = None, session_wait_s: float = 120.0) -> None:
        self._handler = handler
        self._clock = clock
        self._plans: dict[str, CallPlan] = {}
        self._sessions: dict[str, set[asyncio.Task[None]]] = {}
        self._session_wait_s = session_wait_s
        self.servers = servers
        self.trunks = trunks
        self.fastagi: FastAgiServer[CallPlan] = FastAgiServer(
            self._resolve, self._run, clock, clip_dir, host=agi_host, port=agi_port,
            goodbye=goodbye)

    @classmethod
    def from_settings(cls, settings: AsteriskSettings, clock: Clock, handler: CallHandler,
                      *, max_channels: int, calls_per_second: float,
                      sleep: Sleep = asyncio.sleep, goodbye: Prompt | None = None,
                      agi_bind: str | None = None) -> AsteriskBackend:
        """`max_channels`/`calls_per_second`: the dialer's caps, for the one trunk and
        server the flat settings describe. `agi_bind`: the address to listen on (default
        `agi_host`, the address Asterisk is told to connect to)."""
        trunks = [Trunk(t.name, t.dial_template, t.caller_id, tuple(t.prefixes),
                        t.max_channels, t.calls_per_second)
                  for t in settings.trunk_list(max_channels, calls_per_second)]
        servers = [ServerLink(sv.name, AsteriskTelephony(
            AmiConfig(sv.ami_host, sv.ami_port, sv.ami_user,
                      sv.ami_secret.get_secret_value()), clock,
            OriginatePlan(trunk=trunks[0])), sv.max_channels)
            for sv in settings.server_list(max_channels)]
        return cls(ServerPool(servers), TrunkLines(trunks, clock, sleep), clock, handler,
                   agi_bind or settings.agi_host, settings.agi_port,
                   Path(settings.clip_dir), goodbye)

    async def start(self) -> None:
        """Listen for FastAGI first (an answered call must find us), then connect AMI."""
        await self.fastagi.start()
        try:
            await self.servers.start()
        except Exception:
            await self.fastagi.close()
            raise

    async def close(self) -> None:
        await self.servers.close()
        await self.fastagi.close()

    def watch_agents(self, listener: AgentListener) -> None:
        """The queue members' states on every server (call before `start`)."""
        for server in self.servers.servers:
            server.telephony.watch_agents(listener)

    async def place(self, plan: CallPlan, events: ProgressBus) -> CallReport:
        key = str(plan.attempt_id)
        candidates = self.trunks.candidates(plan.phone)
        if not candidates:
            return CallReport(attempt_id=plan.attempt_id, outcome=DialOutcome.INVALID_NUMBER,
                              dialled=False, ended_at=self._clock.now(),
                              details=("no trunk takes this number",))
        self._plans[key] = plan
        try:
            report = await self._place_over(candidates, plan, events)
            await self._sessions_done(key)
        finally:
            self._plans.pop(key, None)
            self._sessions.pop(key, None)
        return report

    async def _place_over(self, candidates: Sequence[Trunk], plan: CallPlan,
                          events: ProgressBus) -> CallReport:
        """Try the trunks in turn until one carries the call (or none is left)."""
        remaining = list(candidates)
        faults: list[str] = []
        while True:
            async with self.trunks.line(remaining) as trunk, self.servers.line() as server:
                hold = ProgressHold(events)
                report = await server.telephony.place(plan, hold.bus, trunk)
            report = dataclasses.replace(report, trunk=trunk.name, server=server.name)
            if not is_trunk_fault(report):
                hold.release()
                return report
            faults.append(f"trunk {trunk.name} on {server.name}: {report.outcome.value} "
                          f"({', '.join(report.details)})")
            log.warning("attempt %s: %s", plan.attempt_id, faults[-1])
            remaining.remove(trunk)
            if not remaining:
                return dataclasses.replace(report, outcome=DialOutcome.FAILED,
                                           dialled=False, details=tuple(faults))

    async def _sessions_done(self, key: str) -> None:
        """Wait for the call's AGI sessions: Asterisk closes them at hangup, but the IVR
        may still be saving an answer or transcribing one."""
        sessions = self._sessions.get(key)
        if not sessions:
            return
        done, pending = await asyncio.wait(set(sessions), timeout=self._session_wait_s)
        del done
        if pending:
            log.error("attempt %s: IVR still running %.0fs after the hangup; reporting "
                      "without it", key, self._session_wait_s)

    async def live_attempts(self) -> set[str]:
        return await self.servers.live_attempts()

    async def _resolve(self, attempt_id: str) -> CallPlan | None:
        if self.servers.by_attempt(attempt_id) is None:
            return None
        return self._plans.get(attempt_id)

    async def _run(self, plan: CallPlan, request: AgiRequest, channel: AgiChannel) -> None:
        key = str(plan.attempt_id)
        task = asyncio.current_task()
        if task is not None:
            self._sessions.setdefault(key, set()).add(task)
        if request.query.get(HANDOFF_PARAMETER):
            log.warning("attempt %s: nobody in %s took the call (%s)", key,
                        plan.result.transferred_to if plan.result else "the queue",
                        request.query[HANDOFF_PARAMETER])
            await self._handler.handoff_unanswered(plan, channel)
        else:
            plan.amd = request.amd
            await self._handler.run(plan, channel)
