"""Several Asterisk servers behind one engine: each its own AMI link and channel cap.

`ServerPool.line()` holds a channel on the connected server with the most free channels
(the configured order breaks ties), waiting while every connected server is full, and
raises `TelephonyUnavailable` when no server is connected (the attempt did not happen).
A server whose AMI link drops takes no new calls; its calls in progress stay with its
`AsteriskTelephony`, which settles them from the channels it finds live when the link
comes back (a restarted Asterisk has none: they ended unseen). The others go on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from core.errors import TelephonyError, TelephonyUnavailable
from dialer.asterisk.telephony import AsteriskTelephony

log = logging.getLogger(__name__)


@dataclass
class ServerLink:
    """One Asterisk: its name, the telephony over its AMI, its cap and its calls now."""

    name: str
    telephony: AsteriskTelephony
    max_channels: int
    in_use: int = 0
    peak_in_use: int = 0

    @property
    def free(self) -> int:
        return self.max_channels - self.in_use


class ServerPool:
    """See the module docstring."""

    def __init__(self, servers: Sequence[ServerLink],
                 recheck_s: float = 1.0) -> None:
        if not servers:
            raise ValueError("at least one server")
        names = [s.name for s in servers]
        if len(set(names)) != len(names):
            raise ValueError(f"server names must differ: {names}")
        self.servers = tuple(servers)
        self._freed = asyncio.Condition()
        self._recheck_s = recheck_s  # a full pool also looks again this often (reconnects)

    async def start(self) -> None:
        """Connect every server. One server must answer; the others that do not are
        retried in the background (a refused login is a configuration error: raised)."""
        if len(self.servers) == 1:
            await self.servers[0].telephony.start()
            return
        results = await asyncio.gather(
            *(s.telephony.start(must_connect=False) for s in self.servers),
            return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self.close()
            raise errors[0]
        if not any(s.telephony.connected for s in self.servers):
            await self.close()
            raise TelephonyUnavailable("no Asterisk server answers on AMI: " + ", ".join(
                s.name for s in self.servers))

    async def close(self) -> None:
        await asyncio.gather(*(s.telephony.close() for s in self.servers),
                             return_exceptions=True)

    def by_attempt(self, attempt_id: str) -> ServerLink | None:
        """The server carrying `attempt_id` now, if any."""
        return next((s for s in self.servers if attempt_id in s.telephony.in_flight), None)

    def _pick(self) -> ServerLink | None:
        connected = [s for s in self.servers if s.telephony.connected]
        if not connected:
            raise TelephonyUnavailable("no Asterisk server connected: " + ", ".join(
                s.name for s in self.servers))
        best = max(connected, key=lambda s: s.free)  # max keeps the first of equals
        return best if best.free > 0 else None

    @asynccontextmanager
    async def line(self) -> AsyncIterator[ServerLink]:
        """A channel on the connected server with the most free, held for the block."""
        async with self._freed:
            while (server := self._pick()) is None:
                try:
                    await asyncio.wait_for(self._freed.wait(), self._recheck_s)
                except TimeoutError:
                    continue
            server.in_use += 1
            server.peak_in_use = max(server.peak_in_use, server.in_use)
        try:
            yield server
        finally:
            server.in_use -= 1
            async with self._freed:
                self._freed.notify()

    async def live_attempts(self) -> set[str]:
        """Attempt ids of the calls up on every connected server (a server away now
        cannot say: its calls are taken for ended, and retried as of unknown outcome)."""
        found: set[str] = set()
        for server in self.servers:
            if server.telephony.connected:
                try:
                    found |= await server.telephony.live_attempts()
                except TelephonyError as exc:
                    log.warning("server %s: live calls unknown (%s)", server.name, exc)
        return found
