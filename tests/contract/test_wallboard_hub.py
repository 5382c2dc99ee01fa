"""The console's wallboard hub follows every running dialer's live feed, found through the
store, and gives each viewer the calls of the departments it may see."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from console.wallboard import WallboardHub
from core.clock import SystemClock
from core.enums import CallProgress
from core.live_feeds import announce, live_feeds, withdraw
from core.store.db import Database
from dialer.agents import AgentState, AgentStatus
from dialer.live_board import LiveBoard
from dialer.live_feed import LiveFeed
from tests.unit.dialer.test_live_board import _event, _plan

NOW = dt.datetime.now(dt.UTC)


class _Dialer:
    """A board and its feed, announced in the store as a `followup run` does."""

    def __init__(self, db: Database, owner: str) -> None:
        self.board = LiveBoard(SystemClock(), lambda: (1, 10))
        self.stop = asyncio.Event()
        self.announced = asyncio.Event()
        self._db = db
        self._owner = owner
        self.task = asyncio.create_task(LiveFeed(self.board, tick_s=0.05).run(
            self.stop, self._announce, self._withdraw))

    async def _announce(self, url: str) -> None:
        with self._db.session() as s:
            announce(s, self._owner, url, dt.datetime.now(dt.UTC))
        self.announced.set()

    async def _withdraw(self) -> None:
        with self._db.session() as s:
            withdraw(s, self._owner)

    def place(self, attempt: int, department: int) -> None:
        self.board(_event(attempt, CallProgress.PLACED, NOW, plan=_plan(attempt, department)))


async def _until(queue: asyncio.Queue[dict[str, Any] | None], want: Any,
                 seen: dict[str, dict[str, Any]]) -> None:
    """Apply messages to `seen` (key -> call) until `want(seen)` holds (or 5 s pass)."""
    async with asyncio.timeout(5):
        while not want(seen):
            m = await queue.get()
            assert m is not None
            if m["type"] == "snapshot":
                seen.clear()
                seen.update({c["key"]: c for c in m["calls"]})
            elif m["type"] == "call":
                seen[m["key"]] = m
            elif m["type"] == "end":
                seen.pop(m["key"], None)


async def test_the_hub_merges_two_dialers_and_scopes_each_viewer(db: Database) -> None:
    a, b = _Dialer(db, "host:1"), _Dialer(db, "host:2")
    hub = WallboardHub(db, SystemClock(), discover_every_s=0.05)
    everyone = hub.subscribe(None)
    cardiology = hub.subscribe(frozenset({1}))
    all_calls: dict[str, dict[str, Any]] = {}
    card_calls: dict[str, dict[str, Any]] = {}
    try:
        await a.announced.wait()
        await b.announced.wait()
        assert sorted(_feeds(db)) == ["host:1", "host:2"]
        a.place(1, department=1)
        b.place(1, department=2)
        b.place(2, department=1)
        await _until(everyone, lambda s: len(s) == 3, all_calls)
        await _until(cardiology, lambda s: len(s) == 2, card_calls)
        assert sorted(all_calls) == ["host:1/1", "host:2/1", "host:2/2"]
        assert sorted(card_calls) == ["host:1/1", "host:2/2"]
        assert {c["department_id"] for c in card_calls.values()} == {1}
        b.board(_event(2, CallProgress.ANSWERED, NOW))
        await _until(cardiology, lambda s: s["host:2/2"]["state"] == "in_ivr", card_calls)
        # dialer b stops (its feed ends and it withdraws): its calls leave every screen
        b.stop.set()
        await b.task
        await _until(everyone, lambda s: sorted(s) == ["host:1/1"], all_calls)
        await _until(cardiology, lambda s: sorted(s) == ["host:1/1"], card_calls)
        assert hub.lines()["max"] == 10  # one dialer left, ten lines
    finally:
        a.stop.set()
        await a.task
        await hub.close()


def _feeds(db: Database) -> dict[str, str]:
    with db.session() as s:
        return live_feeds(s, dt.datetime.now(dt.UTC))


async def test_a_feed_message_the_hub_cannot_read_is_skipped(db: Database) -> None:
    done = asyncio.Event()

    async def bad_feed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
                     b"data: {not json\n\n"
                     b'data: {"type": "call", "attempt": 1, "department_id": "x"}\n\n'
                     b'data: {"type": "call", "attempt": 2, "department_id": 1, '
                     b'"script": "s", "state": "teleporting", "since": "2026-12-08"}\n\n'
                     b'data: {"type": "call", "attempt": 3, "department_id": 1, '
                     b'"script": "s", "state": "ringing", "since": "2026-12-08T02:00:00"}\n\n')
        await writer.drain()
        await done.wait()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(bad_feed, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    with db.session() as s:
        announce(s, "odd:1", f"http://127.0.0.1:{port}/events", dt.datetime.now(dt.UTC))
    hub = WallboardHub(db, SystemClock(), discover_every_s=0.05)
    viewer = hub.subscribe(None)
    seen: dict[str, dict[str, Any]] = {}
    try:
        await _until(viewer, lambda s: "odd:1/3" in s, seen)
        assert list(seen) == ["odd:1/3"]
    finally:
        await hub.close()
        done.set()
        server.close()
        await server.wait_closed()


async def test_nurses_states_reach_every_viewer_and_leave_with_their_dialer(
        db: Database) -> None:
    dialer = _Dialer(db, "host:9")
    dialer.board.agent(AgentStatus("followup-nurses", "护士王", AgentState.AVAILABLE, NOW))
    hub = WallboardHub(db, SystemClock(), discover_every_s=0.05)
    oncology = hub.subscribe(frozenset({2}))
    agents: dict[str, str] = {}

    async def until(want: Any) -> None:
        async with asyncio.timeout(5):
            while not want(agents):
                m = await oncology.get()
                assert m is not None
                for a in m.get("agents", []) if m["type"] == "snapshot" else \
                        [m] if m["type"] == "agent" else []:
                    agents[a["key"]] = a["state"]
                if m["type"] == "agent_gone":
                    agents.pop(m["key"])

    try:
        await dialer.announced.wait()
        await until(lambda a: a.get("host:9/followup-nurses/护士王") == "available")
        dialer.board.agent(AgentStatus("followup-nurses", "护士王", AgentState.TALKING, NOW))
        await until(lambda a: a.get("host:9/followup-nurses/护士王") == "talking")
        dialer.stop.set()
        await dialer.task
        await until(lambda a: a == {})
    finally:
        dialer.stop.set()
        await hub.close()
