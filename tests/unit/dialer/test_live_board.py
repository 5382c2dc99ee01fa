"""The live board follows a call's events; the live feed serves them over real HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import httpx
import pytest

from core.clock import FakeClock
from core.enums import CallProgress
from dialer.agents import AgentState, AgentStatus, member_state
from dialer.call_plan import AttemptId, CallPlan, ProgressBus, ProgressEvent
from dialer.claims import ClaimedTask
from dialer.live_board import LiveBoard
from dialer.live_feed import LiveFeed
from ivr.call_context import CallContext
from ivr.prompts import PromptContext

NOW = dt.datetime(2026, 12, 8, 2, 0, tzinfo=dt.UTC)


def _plan(attempt: int, department: int, script: str = "card") -> CallPlan:
    task = ClaimedTask(attempt, attempt, attempt, department, "+8613800138000", "zh-CN",
                       "Asia/Shanghai", ((script, 1),), 0, 3, 50)
    return CallPlan(AttemptId(attempt), task, task.phone, (),
                    CallContext(PromptContext(), 1960))


def _event(attempt: int, progress: CallProgress, at: dt.datetime, **kw: object
           ) -> ProgressEvent:
    return ProgressEvent(AttemptId(attempt), progress, at, **kw)  # type: ignore[arg-type]


def test_a_call_walks_through_the_states_and_leaves_the_board() -> None:
    clock = FakeClock(NOW)
    board = LiveBoard(clock, lambda: (1, 10))
    queue = board.subscribe()
    assert queue.get_nowait() == {"type": "snapshot", "calls": [], "agents": [], "lines": {
        "type": "lines", "in_use": 1, "max": 10, "dialled_last_min": 0,
        "at": NOW.isoformat()}}
    board(_event(7, CallProgress.PLACED, NOW, plan=_plan(7, 3)))
    board(_event(7, CallProgress.DIALLED, NOW))  # still dialling: no message
    board(_event(7, CallProgress.RINGING, NOW + dt.timedelta(seconds=2)))
    board(_event(7, CallProgress.ANSWERED, NOW + dt.timedelta(seconds=9)))
    board(_event(7, CallProgress.IN_QUEUE, NOW + dt.timedelta(seconds=60), queue="nurses"))
    board(_event(7, CallProgress.CONNECTED, NOW + dt.timedelta(seconds=75), agent="护士王"))
    seen = [queue.get_nowait() for _ in range(queue.qsize())]
    assert [(m["state"], m["since"]) for m in seen] == [
        ("dialling", NOW.isoformat()),
        ("ringing", (NOW + dt.timedelta(seconds=2)).isoformat()),
        ("in_ivr", (NOW + dt.timedelta(seconds=9)).isoformat()),
        ("in_queue", (NOW + dt.timedelta(seconds=60)).isoformat()),
        ("with_person", (NOW + dt.timedelta(seconds=75)).isoformat())]
    assert seen[-1]["agent"] == "护士王" and seen[-1]["department_id"] == 3
    assert seen[-1]["queued_at"] == (NOW + dt.timedelta(seconds=60)).isoformat()
    assert board.lines()["dialled_last_min"] == 1
    board(_event(7, CallProgress.ENDED, NOW + dt.timedelta(seconds=90)))
    assert queue.get_nowait()["type"] == "end" and board.calls == {}
    clock.advance(dt.timedelta(minutes=2))
    assert board.lines()["dialled_last_min"] == 0  # the last minute only


def test_queue_members_are_pushed_when_their_state_changes() -> None:
    board = LiveBoard(FakeClock(NOW), lambda: (0, 1))
    board.agent(AgentStatus("followup-nurses", "护士王", AgentState.AVAILABLE, NOW))
    queue = board.subscribe()
    assert queue.get_nowait()["agents"] == [{
        "type": "agent", "queue": "followup-nurses", "member": "护士王", "state": "available",
        "since": NOW.isoformat()}]
    later = NOW + dt.timedelta(seconds=5)
    board.agent(AgentStatus("followup-nurses", "护士王", AgentState.AVAILABLE, later))
    board.agent(AgentStatus("followup-nurses", "护士王", AgentState.TALKING, later))
    assert [queue.get_nowait() for _ in range(queue.qsize())] == [{
        "type": "agent", "queue": "followup-nurses", "member": "护士王", "state": "talking",
        "since": later.isoformat()}]


@pytest.mark.parametrize(("status", "paused", "in_call", "state"), [
    (1, False, False, AgentState.AVAILABLE), (6, False, False, AgentState.RINGING),
    (2, False, False, AgentState.TALKING), (1, False, True, AgentState.TALKING),
    (1, True, False, AgentState.PAUSED), (5, False, False, AgentState.UNAVAILABLE),
    (None, False, False, AgentState.UNAVAILABLE), (99, False, False, AgentState.UNAVAILABLE)])
def test_asterisk_member_states_in_a_supervisors_words(
        status: int | None, paused: bool, in_call: bool, state: AgentState) -> None:
    assert member_state(status, paused, in_call) is state


def test_events_of_calls_placed_before_the_board_are_ignored() -> None:
    board = LiveBoard(FakeClock(NOW), lambda: (0, 1))
    queue = board.subscribe()
    queue.get_nowait()
    board(_event(5, CallProgress.ANSWERED, NOW))
    board(_event(5, CallProgress.ENDED, NOW))
    assert queue.empty() and board.calls == {}


def test_a_subscriber_that_falls_behind_is_dropped_not_waited_for() -> None:
    board = LiveBoard(FakeClock(NOW), lambda: (0, 1), max_backlog=3)
    slow = board.subscribe()
    for i in range(5):
        board(_event(i, CallProgress.PLACED, NOW, plan=_plan(i, 1)))
    items = [slow.get_nowait() for _ in range(slow.qsize())]
    assert items[-1] is None and len(items) == 4  # snapshot, two calls, then dropped
    assert len(board.calls) == 5


async def test_the_feed_serves_a_snapshot_then_each_change_over_http() -> None:
    clock = FakeClock(NOW)
    board = LiveBoard(clock, lambda: (2, 30))
    bus = ProgressBus()
    bus.subscribe(board)
    bus.publish(_event(1, CallProgress.PLACED, NOW, plan=_plan(1, 2)))
    stop = asyncio.Event()
    announced: list[str] = []
    withdrawn: list[bool] = []
    ready = asyncio.Event()

    async def announce(url: str) -> None:
        announced.append(url)
        ready.set()

    async def withdraw() -> None:
        withdrawn.append(True)

    feed = LiveFeed(board, tick_s=0.05)
    server = asyncio.create_task(feed.run(stop, announce, withdraw))
    await ready.wait()
    got: list[dict[str, object]] = []
    async with httpx.AsyncClient() as client:
        missing = await client.get(announced[0].replace("/events", "/nope"))
        assert missing.status_code == 404
        async with client.stream("GET", announced[0]) as reply:
            assert reply.headers["content-type"] == "text/event-stream"
            lines = reply.aiter_lines()
            while len(got) < 3:
                line = await anext(lines)
                if line.startswith("data: "):
                    message = json.loads(line[6:])
                    if message["type"] != "lines":
                        got.append(message)
                    if len(got) == 1:
                        bus.publish(_event(1, CallProgress.ANSWERED, NOW))
                        bus.publish(_event(1, CallProgress.ENDED, NOW))
    stop.set()
    assert await server == announced[0] and withdrawn == [True]
    assert announced[0].startswith("http://127.0.0.1:")
    assert [m["type"] for m in got] == ["snapshot", "call", "end"]
    snapshot_calls = got[0]["calls"]
    assert isinstance(snapshot_calls, list) and snapshot_calls[0]["department_id"] == 2
    assert got[1]["state"] == "in_ivr"
