"""The Asterisk telephony backend, assembled: AMI originates + the FastAGI server + the IVR.

`AsteriskBackend` is a `dialer.Telephony`: `place(plan, events)` originates through AMI;
when the patient answers, the dialplan opens a FastAGI session, which finds its plan among
the calls this backend has in flight (`?attempt=` query, else the FOLLOWUP_ATTEMPT
variable) and runs the IVR from it. When the IVR handed the call to a queue and nobody
there took it, the dialplan opens a second session (`?attempt=..&handoff=<QUEUESTATUS>`)
that tells the patient what happens now. `place()` returns once the patient's leg is gone
and every AGI session of the call has ended, so the IVR's result is on the plan.
A session for an attempt this process is not dialling (a restart, a stray call) is ended
politely and logged.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from core.clock import Clock
from core.settings import AsteriskSettings
from dialer.asterisk.agi import AgiRequest
from dialer.asterisk.agi_channel import AgiChannel
from dialer.asterisk.ami import AmiConfig
from dialer.asterisk.fastagi import FastAgiServer
from dialer.asterisk.telephony import AsteriskTelephony, OriginatePlan
from dialer.call_handler import CallHandler
from dialer.call_plan import CallPlan, ProgressBus
from dialer.telephony import CallReport
from ivr.channel import Prompt

log = logging.getLogger(__name__)

HANDOFF_PARAMETER = "handoff"


class AsteriskBackend:
    """`from_settings(...)`; `start()`, then `place()` calls; `close()` at the end."""

    def __init__(self, ami: AmiConfig, plan: OriginatePlan, clock: Clock,
                 handler: CallHandler, agi_host: str, agi_port: int, clip_dir: Path,
                 goodbye: Prompt | None = None, session_wait_s: float = 120.0) -> None:
        self._handler = handler
        self._plans: dict[str, CallPlan] = {}
        self._sessions: dict[str, set[asyncio.Task[None]]] = {}
        self._session_wait_s = session_wait_s
        self.telephony = AsteriskTelephony(ami, clock, plan)
        self.fastagi: FastAgiServer[CallPlan] = FastAgiServer(
            self._resolve, self._run, clock, clip_dir, host=agi_host, port=agi_port,
            goodbye=goodbye)

    @classmethod
    def from_settings(cls, settings: AsteriskSettings, clock: Clock, handler: CallHandler,
                      goodbye: Prompt | None = None,
                      agi_bind: str | None = None) -> AsteriskBackend:
        """`agi_bind`: the address to listen on (default `agi_host`, the address Asterisk
        is told to connect to)."""
        return cls(AmiConfig(settings.ami_host, settings.ami_port, settings.ami_user,
                             settings.ami_secret.get_secret_value()),
                   OriginatePlan(dial_template=settings.dial_template, trunk=settings.trunk),
                   clock, handler, agi_bind or settings.agi_host, settings.agi_port,
                   Path(settings.clip_dir), goodbye)

    async def start(self) -> None:
        """Listen for FastAGI first (an answered call must find us), then connect AMI."""
        await self.fastagi.start()
        try:
            await self.telephony.start()
        except Exception:
            await self.fastagi.close()
            raise

    async def close(self) -> None:
        await self.telephony.close()
        await self.fastagi.close()

    async def place(self, plan: CallPlan, events: ProgressBus) -> CallReport:
        key = str(plan.attempt_id)
        self._plans[key] = plan
        try:
            report = await self.telephony.place(plan, events)
            await self._sessions_done(key)
        finally:
            self._plans.pop(key, None)
            self._sessions.pop(key, None)
        return report

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
        return await self.telephony.live_attempts()

    async def _resolve(self, attempt_id: str) -> CallPlan | None:
        if attempt_id not in self.telephony.in_flight:
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
