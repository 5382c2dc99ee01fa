"""A dialer's start: the simulation clock several processes share, and a start during a
database restart that waits for the database instead of exiting."""

from __future__ import annotations

import datetime as dt

import pytest

from core.clock import FakeClock
from core.errors import StoreError, StoreUnavailable
from engine.commands.dial import reconcile_at_start, sim_clock

EPOCH = dt.datetime(2026, 3, 10, 1, 0, tzinfo=dt.UTC)


def test_processes_started_apart_share_one_simulated_clock() -> None:
    early = sim_clock(EPOCH + dt.timedelta(seconds=2), 600.0, EPOCH)
    late = sim_clock(EPOCH + dt.timedelta(seconds=5), 600.0, EPOCH)
    # the late one starts where the early one's clock already is, not 1,800 s behind it
    assert abs((late.now() - early.now()).total_seconds() - 1800.0) < 5.0
    assert abs((late.now() - (EPOCH + dt.timedelta(seconds=3000))).total_seconds()) < 5.0
    alone = sim_clock(EPOCH, 600.0, None)
    assert abs((alone.now() - EPOCH).total_seconds()) < 5.0


class FlakyAttempts:
    """`AttemptLog.reconcile` behind a store that is away for the first `failures` calls."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or StoreUnavailable("database unavailable: starting up")
        self.calls: list[tuple[dt.datetime, set[int], bool]] = []

    def reconcile(self, now: dt.datetime, live: set[int], *, all_claims_are_dead: bool) -> int:
        self.calls.append((now, live, all_claims_are_dead))
        if self.failures:
            self.failures -= 1
            raise self.error
        return 3


class Pauses:
    def __init__(self) -> None:
        self.taken: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.taken.append(seconds)


async def test_a_start_during_a_database_restart_waits_for_the_database() -> None:
    attempts = FlakyAttempts(failures=6)
    pauses = Pauses()
    settled = await reconcile_at_start(attempts, FakeClock(EPOCH), {7},  # type: ignore[arg-type]
                                       all_claims_are_dead=False, sleep=pauses)
    assert settled == 3
    assert len(attempts.calls) == 7
    assert attempts.calls[-1] == (EPOCH, {7}, False)
    assert pauses.taken == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]  # backing off, capped


async def test_a_permanent_store_error_at_start_is_raised() -> None:
    attempts = FlakyAttempts(failures=1, error=StoreError("relation does not exist"))
    pauses = Pauses()
    with pytest.raises(StoreError):
        await reconcile_at_start(attempts, FakeClock(EPOCH), set(),  # type: ignore[arg-type]
                                 all_claims_are_dead=True, sleep=pauses)
    assert pauses.taken == []
