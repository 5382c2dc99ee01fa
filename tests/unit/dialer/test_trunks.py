"""Trunk choice by number prefix, overflow to the next trunk, trunk faults, held progress."""

from __future__ import annotations

import asyncio
import datetime as dt

from core.clock import FakeClock
from core.enums import CallProgress, DialOutcome
from dialer.call_plan import AttemptId, ProgressBus, ProgressEvent
from dialer.telephony import CallReport
from dialer.trunks import ProgressHold, Trunk, TrunkLines, is_trunk_fault

T0 = dt.datetime(2026, 12, 7, 9, tzinfo=dt.UTC)
MOBILE = Trunk("mobile", prefixes=("+861", "1"), max_channels=1)
LONG_DISTANCE = Trunk("long", prefixes=("+8610", "0"), max_channels=1)
ANY = Trunk("any", max_channels=1)


def lines(*trunks: Trunk) -> TrunkLines:
    clock = FakeClock(T0)

    async def sleep(seconds: float) -> None:  # waiting moves the fake clock
        clock.advance(dt.timedelta(seconds=seconds))
        await asyncio.sleep(0)

    return TrunkLines(trunks, clock, sleep)


def test_the_longest_matching_prefix_goes_first_and_a_catch_all_last() -> None:
    routes = lines(ANY, MOBILE, LONG_DISTANCE)
    assert [t.name for t in routes.candidates("+8613800000001")] == ["mobile", "any"]
    assert [t.name for t in routes.candidates("+861062000000")] == ["long", "mobile", "any"]
    assert [t.name for t in routes.candidates("0755123456")] == ["long", "any"]
    assert [t.name for t in routes.candidates("+12025550100")] == ["any"]
    assert lines(MOBILE).candidates("+12025550100") == []


async def test_a_full_trunk_overflows_to_the_next_candidate() -> None:
    routes = lines(MOBILE, ANY)
    first = routes.candidates("+8613800000001")
    async with routes.line(first) as a, routes.line(first) as b:
        assert (a.name, b.name) == ("mobile", "any")
        assert routes.pacers["mobile"].in_use == routes.pacers["any"].in_use == 1
        # both full: the next call waits for its first choice
        waiting = asyncio.ensure_future(routes.line(first).__aenter__())
        await asyncio.sleep(0)
        assert not waiting.done()
    chosen = await waiting
    assert chosen.name == "mobile"


def test_congestion_and_a_trunk_that_never_made_a_channel_are_trunk_faults() -> None:
    def report(outcome: DialOutcome, dialled: bool, certain: bool = True) -> CallReport:
        return CallReport(AttemptId(1), outcome, dialled, outcome_certain=certain)

    assert is_trunk_fault(report(DialOutcome.CONGESTION, True))
    assert is_trunk_fault(report(DialOutcome.FAILED, False))
    assert not is_trunk_fault(report(DialOutcome.FAILED, True))  # the call got somewhere
    assert not is_trunk_fault(report(DialOutcome.BUSY, True))
    assert not is_trunk_fault(report(DialOutcome.NO_ANSWER, True))
    assert not is_trunk_fault(report(DialOutcome.CONGESTION, True, certain=False))


def test_dialled_is_held_until_the_call_rings_and_dropped_when_the_trunk_refused() -> None:
    seen: list[CallProgress] = []
    events = ProgressBus()
    events.subscribe(lambda e: seen.append(e.progress))

    refused = ProgressHold(events)
    refused.bus.publish(ProgressEvent(AttemptId(1), CallProgress.DIALLED, T0))
    assert seen == []  # never released: the patient's number was not reached

    carried = ProgressHold(events)
    carried.bus.publish(ProgressEvent(AttemptId(1), CallProgress.DIALLED, T0))
    assert seen == []
    carried.bus.publish(ProgressEvent(AttemptId(1), CallProgress.RINGING, T0))
    assert seen == [CallProgress.DIALLED, CallProgress.RINGING]

    busy = ProgressHold(events)
    busy.bus.publish(ProgressEvent(AttemptId(2), CallProgress.DIALLED, T0))
    busy.release()  # a busy line: the number was dialled
    assert seen[-1] is CallProgress.DIALLED and len(seen) == 3
