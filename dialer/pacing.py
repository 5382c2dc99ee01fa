"""Pacing: never more than a trunk's channels at once, never faster than its calls/second.

`Pacer.slot()` is an async context manager held for the whole call. Time comes from the
injected clock and `sleep`, so tests (and accelerated simulations) drive it deterministically.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from core.clock import Clock

Sleep = Callable[[float], Awaitable[None]]


class Pacer:
    """A channel semaphore plus a calls-per-second spacing for one trunk."""

    def __init__(self, max_channels: int, calls_per_second: float, clock: Clock,
                 sleep: Sleep = asyncio.sleep) -> None:
        if max_channels < 1 or calls_per_second <= 0:
            raise ValueError("max_channels >= 1 and calls_per_second > 0")
        self.max_channels = max_channels
        self._interval = dt.timedelta(seconds=1.0 / calls_per_second)
        self._clock = clock
        self._sleep = sleep
        self._channels = asyncio.Semaphore(max_channels)
        self._start_lock = asyncio.Lock()
        self._next_start: dt.datetime | None = None
        self.in_use = 0
        self.peak_in_use = 0

    @property
    def free(self) -> int:
        return self.max_channels - self.in_use

    @property
    def has_free_channel(self) -> bool:
        """A `slot()` entered now takes a channel at once (it may still wait its turn
        under the calls-per-second cap)."""
        return not self._channels.locked()

    async def _await_start_slot(self) -> None:
        async with self._start_lock:
            now = self._clock.now()
            if self._next_start is not None and now < self._next_start:
                await self._sleep((self._next_start - now).total_seconds())
                now = self._clock.now()
            self._next_start = max(now, self._next_start or now) + self._interval

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one channel for the duration of a call; the start respects the CPS cap."""
        await self._channels.acquire()
        try:
            await self._await_start_slot()
            self.in_use += 1
            self.peak_in_use = max(self.peak_in_use, self.in_use)
            try:
                yield
            finally:
                self.in_use -= 1
        finally:
            self._channels.release()
