"""The Asterisk telephony backend, assembled: AMI originates + the FastAGI server + the IVR.

`AsteriskBackend` is a `dialer.Telephony`: `place()` originates through AMI; when the
patient answers, the dialplan opens a FastAGI session, which finds its attempt among the
calls this backend has in flight (`?attempt=` query, else the FOLLOWUP_ATTEMPT variable),
runs `ivr(attempt_id, channel)` and posts the result; `place()` returns the report with it.
A session for an attempt this process is not dialling (a restart, a stray call) is ended
politely and logged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from core.clock import Clock
from core.settings import AsteriskSettings
from dialer.asterisk.agi import AgiRequest
from dialer.asterisk.agi_channel import AgiChannel
from dialer.asterisk.ami import AmiConfig
from dialer.asterisk.fastagi import FastAgiServer
from dialer.asterisk.telephony import AsteriskTelephony, IvrResultBoard, OriginatePlan
from dialer.telephony import CallReport, CallRequest, IvrResult
from ivr.channel import Channel, Prompt

IvrRunner = Callable[[str, Channel], Awaitable[IvrResult]]


class AsteriskBackend:
    """`from_settings(...)`; `start()`, then `place()` calls; `close()` at the end."""

    def __init__(self, ami: AmiConfig, plan: OriginatePlan, clock: Clock, ivr: IvrRunner,
                 agi_host: str, agi_port: int, clip_dir: Path,
                 goodbye: Prompt | None = None) -> None:
        self._ivr = ivr
        self._board = IvrResultBoard()
        self.telephony = AsteriskTelephony(ami, clock, self._board, plan)
        self.fastagi: FastAgiServer[str] = FastAgiServer(
            self._resolve, self._run, clock, clip_dir, host=agi_host, port=agi_port,
            goodbye=goodbye)

    @classmethod
    def from_settings(cls, settings: AsteriskSettings, clock: Clock, ivr: IvrRunner,
                      goodbye: Prompt | None = None,
                      agi_bind: str | None = None) -> AsteriskBackend:
        """`agi_bind`: the address to listen on (default `agi_host`, the address Asterisk
        is told to connect to)."""
        return cls(AmiConfig(settings.ami_host, settings.ami_port, settings.ami_user,
                             settings.ami_secret.get_secret_value()),
                   OriginatePlan(dial_template=settings.dial_template, trunk=settings.trunk),
                   clock, ivr, agi_bind or settings.agi_host, settings.agi_port,
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

    async def place(self, call: CallRequest) -> CallReport:
        return await self.telephony.place(call)

    async def live_attempts(self) -> set[str]:
        return await self.telephony.live_attempts()

    async def _resolve(self, attempt_id: str) -> str | None:
        return attempt_id if attempt_id in self.telephony.in_flight else None

    async def _run(self, attempt_id: str, request: AgiRequest, channel: AgiChannel) -> None:
        result = await self._ivr(attempt_id, channel)
        self._board.post(attempt_id, result)
