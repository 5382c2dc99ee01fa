"""An asyncio FastAGI server: one task per session, one broken session never hurts another.

Why our own and not `panoramisk.fast_agi` (1.4): its `send_command` reads exactly one line
per command, so the bare `HANGUP` line Asterisk sends before a response makes every later
command read the previous command's answer (the session is off by one from then on); it has
no `raise_on_error` in 1.4; it catches `BaseException` around routes (swallowing
cancellation); and it would hand us untyped dicts. `bench/fastagi.py` measures both.

Each session: read the environment (`AgiRequest`), ask the `resolver` which attempt it
belongs to (the `attempt=` query parameter, else the FOLLOWUP_ATTEMPT channel variable),
then run the `handler` (the IVR) over an `AgiChannel`. An unknown attempt gets a short
message and HANGUP, and is logged. Closing the socket ends the AGI; the dialplan goes on
(to the queue when the handler transferred the call).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from core.clock import Clock
from dialer.asterisk.agi import AgiProtocolError, AgiRequest
from dialer.asterisk.agi_channel import AgiChannel
from dialer.asterisk.agi_connection import AgiConnection
from dialer.asterisk.agi_stream import AgiStream, session_protocol
from ivr.channel import Prompt

log = logging.getLogger(__name__)

ATTEMPT_VARIABLE = "FOLLOWUP_ATTEMPT"
A = TypeVar("A")

Resolver = Callable[[str], Awaitable[A | None]]
Handler = Callable[[A, AgiRequest, AgiChannel], Awaitable[None]]


@dataclass
class FastAgiStats:
    """Counters for health checks and the benchmark."""

    sessions: int = 0
    completed: int = 0
    unknown_attempt: int = 0
    protocol_errors: int = 0
    handler_errors: int = 0
    active: int = 0


async def find_attempt_id(request: AgiRequest, channel: AgiChannel) -> str | None:
    """The attempt id of a session: the query string first, else the channel variable."""
    if request.attempt_id:
        return request.attempt_id
    value = await channel.get_variable(ATTEMPT_VARIABLE)
    return value.strip() if value and value.strip() else None


class FastAgiServer(Generic[A]):
    """Serve FastAGI sessions on `host:port`.

    `resolver(attempt_id)` returns the attempt (any object the handler understands) or None;
    `handler(attempt, request, channel)` runs the call. `goodbye` is played to a session
    whose attempt is unknown before it is hung up.
    """

    def __init__(self, resolver: Resolver[A], handler: Handler[A], clock: Clock,
                 record_dir: Path, host: str = "127.0.0.1", port: int = 4573,
                 goodbye: Prompt | None = None, script: str = "followup",
                 command_timeout_s: float | None = None, env_timeout_s: float = 10.0,
                 session_timeout_s: float = 3 * 3600.0) -> None:
        self._resolver = resolver
        self._handler = handler
        self._clock = clock
        self._record_dir = record_dir
        self._host = host
        self._port = port
        self._goodbye = goodbye
        self._script = script
        self._command_timeout = command_timeout_s
        self._env_timeout = env_timeout_s
        self._session_timeout = session_timeout_s
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.stats = FastAgiStats()

    @property
    def port(self) -> int:
        """The bound port (useful with port 0 in tests)."""
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.get_running_loop().create_server(
            session_protocol(self._accept, limit=16384), self._host, self._port, backlog=4096)

    async def close(self) -> None:
        """Stop accepting, cancel the sessions in flight and wait for them."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, stream: AgiStream) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.stats.sessions += 1
        self.stats.active += 1
        conn = AgiConnection(stream, stream, self._command_timeout)
        # one deadline per session (a timer per command would cost more than the rest of
        # the command's handling): first for the environment, then moved for the call
        request: AgiRequest | None = None
        try:
            async with asyncio.timeout(self._env_timeout) as deadline:
                request = await conn.read_environment()
                deadline.reschedule(asyncio.get_running_loop().time() + self._session_timeout)
                await self._call(conn, request)
        except TimeoutError:
            if request is None:
                self.stats.protocol_errors += 1
                log.warning("FastAGI: no AGI environment within %.0fs", self._env_timeout)
            else:
                self.stats.handler_errors += 1
                log.error("FastAGI: session on channel %s exceeded %.0fs; ending it",
                          request.channel, self._session_timeout)
        except (AgiProtocolError, ConnectionError, OSError) as exc:  # the environment
            self.stats.protocol_errors += 1
            log.warning("FastAGI: bad session start: %s", exc)
        finally:
            self.stats.active -= 1
            if task is not None:
                self._tasks.discard(task)
            conn.close()

    async def _call(self, conn: AgiConnection, request: AgiRequest) -> None:
        if request.script.strip("/") != self._script:
            self.stats.unknown_attempt += 1
            log.warning("FastAGI: no route for %r (channel %s)", request.script, request.channel)
            return
        channel = AgiChannel(conn, self._clock, self._record_dir,
                             clip_prefix=f"clip-{_safe(request.uniqueid)}",
                             recording_lead_ms=request.recording_lead_ms)
        attempt_id = await find_attempt_id(request, channel)
        try:
            attempt = await self._resolver(attempt_id) if attempt_id else None
        except Exception:
            log.exception("FastAGI: looking up attempt %r failed", attempt_id)
            attempt = None
        if attempt is None:
            self.stats.unknown_attempt += 1
            log.warning("FastAGI: unknown attempt %r on channel %s; ending politely",
                        attempt_id, request.channel)
            if self._goodbye is not None:
                await channel.play(self._goodbye)
            await channel.hangup()
            return
        try:
            await self._handler(attempt, request, channel)  # until Asterisk closes the socket
        except Exception:
            # one broken session must not take the server down; the call is logged and the
            # AGI ends, so the dialplan goes on (hangs up) instead of leaving dead air
            self.stats.handler_errors += 1
            log.exception("FastAGI: handler failed for attempt %s", attempt_id)
            return
        self.stats.completed += 1


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _safe(value: str) -> str:
    return _UNSAFE.sub("", value)[:64] or "call"
