"""The pacer never exceeds a trunk's channels or its calls per second (fake clock)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools

from core.clock import FakeClock
from dialer.pacing import Pacer


class VirtualSleep:
    """Sleeping moves the fake clock; it records every start so we can check the spacing."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    async def __call__(self, seconds: float) -> None:
        self.clock.advance(dt.timedelta(seconds=seconds))
        await asyncio.sleep(0)


async def test_channel_cap_and_cps_hold() -> None:
    clock = FakeClock(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    pacer = Pacer(max_channels=3, calls_per_second=2.0, clock=clock, sleep=VirtualSleep(clock))
    starts: list[dt.datetime] = []
    concurrent = 0
    peak = 0

    async def call() -> None:
        nonlocal concurrent, peak
        async with pacer.slot():
            starts.append(clock.now())
            concurrent += 1
            peak = max(peak, concurrent)
            for _ in range(5):
                await asyncio.sleep(0)
            concurrent -= 1

    await asyncio.gather(*(call() for _ in range(12)))
    assert peak <= 3 and pacer.peak_in_use <= 3
    assert len(starts) == 12
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    assert all(g >= 0.5 - 1e-9 for g in gaps), gaps
    assert pacer.in_use == 0


async def test_a_failing_call_frees_its_channel() -> None:
    clock = FakeClock(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    pacer = Pacer(max_channels=1, calls_per_second=100.0, clock=clock, sleep=VirtualSleep(clock))

    async def bad() -> None:
        async with pacer.slot():
            raise RuntimeError("adapter blew up")

    results = await asyncio.gather(bad(), bad(), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert pacer.in_use == 0 and pacer.free == 1
