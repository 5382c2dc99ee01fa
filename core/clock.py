"""Time is an input: everything that needs `now` gets a `Clock`."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

UTC = dt.UTC


class Clock(Protocol):
    """Source of the current time (always timezone-aware UTC)."""

    def now(self) -> dt.datetime: ...


class SystemClock:
    """The wall clock. Only the composition root builds one."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)


class FakeClock:
    """A clock tests (and accelerated simulations) move by hand."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> dt.datetime:
        return self._now

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        self._now += delta
        return self._now

    def set(self, when: dt.datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = when.astimezone(UTC)


def ensure_utc(value: dt.datetime) -> dt.datetime:
    """Return `value` as aware UTC; naive values are taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class AcceleratedClock:
    """Simulated time running `speed` times faster than the wall clock (for the sim backend
    and the demo). `sleep` sleeps the simulated duration."""

    def __init__(self, start: dt.datetime, speed: float) -> None:
        import time

        if start.tzinfo is None:
            raise ValueError("AcceleratedClock needs an aware datetime")
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._monotonic = time.monotonic
        self._start = start.astimezone(UTC)
        self._t0 = time.monotonic()
        self.speed = speed

    def now(self) -> dt.datetime:
        return self._start + dt.timedelta(seconds=(self._monotonic() - self._t0) * self.speed)

    def jump_to(self, when: dt.datetime) -> None:
        """Skip idle simulated time (never backwards). Only when nothing is in flight."""
        ahead = when.astimezone(UTC) - self.now()
        if ahead > dt.timedelta(0):
            self._start += ahead

    async def sleep(self, seconds: float) -> None:
        import asyncio

        await asyncio.sleep(max(seconds, 0.0) / self.speed)
