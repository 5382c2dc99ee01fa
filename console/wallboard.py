"""The wallboard's live picture: every running dialer's calls, followed through its feed.

Each `followup run` serves its calls' progress as server-sent events (`dialer.live_feed`)
and announces the feed's URL in the store (`core.live_feeds`). The console's hub looks for
feeds every few seconds, follows each one, keeps the calls in progress of all of them, and
fans every change out to the browsers watching the wallboard, each call filtered to the
departments its viewer may see (the nurses' and agents' states go to every viewer: the
handoff queues serve every department). Nothing is polled per change: a call's state reaches the
browser as the dialer publishes it.

Feed messages are parsed into `LiveCall` values here, at the edge; a malformed one is
logged and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from core.clock import Clock
from core.live_feeds import live_feeds
from core.store.db import Database

log = logging.getLogger(__name__)

Message = dict[str, Any]
Scope = frozenset[int] | None  # departments a viewer may see; None: every one

STATES = ("dialling", "ringing", "in_ivr", "in_queue", "with_person")


@dataclass(frozen=True, slots=True)
class LiveCall:
    key: str  # "<dialer>/<attempt id>": unique across dialer processes
    department_id: int
    script: str
    state: str
    since: str  # ISO time the call entered `state`
    queued_at: str | None
    agent: str | None

    def message(self) -> Message:
        return {"type": "call", "key": self.key, "department_id": self.department_id,
                "script": self.script, "state": self.state, "since": self.since,
                "queued_at": self.queued_at, "agent": self.agent}


def parse_call(owner: str, m: Message) -> LiveCall:
    """A feed's call message as a typed value; raises ValueError/KeyError/TypeError."""
    state = str(m["state"])
    if state not in STATES:
        raise ValueError(f"unknown state {state!r}")
    attempt = int(m["attempt"])
    department_id = m["department_id"]
    if not isinstance(department_id, int):
        raise TypeError("department_id is not an integer")
    queued = m.get("queued_at")
    agent = m.get("agent")
    return LiveCall(f"{owner}/{attempt}", department_id, str(m["script"]), state,
                    str(dt.datetime.fromisoformat(str(m["since"])).isoformat()),
                    None if queued is None else str(queued),
                    None if agent is None else str(agent))


AGENT_STATES = ("available", "ringing", "talking", "paused", "unavailable")


@dataclass(frozen=True, slots=True)
class LiveAgent:
    key: str  # "<dialer>/<queue>/<member>"
    queue: str
    member: str
    state: str
    since: str

    def message(self) -> Message:
        return {"type": "agent", "key": self.key, "queue": self.queue, "member": self.member,
                "state": self.state, "since": self.since}


def parse_agent(owner: str, m: Message) -> LiveAgent:
    """A feed's agent message as a typed value; raises ValueError/KeyError/TypeError."""
    state = str(m["state"])
    if state not in AGENT_STATES:
        raise ValueError(f"unknown agent state {state!r}")
    queue, member = str(m["queue"]), str(m["member"])
    return LiveAgent(f"{owner}/{queue}/{member}", queue, member, state,
                     dt.datetime.fromisoformat(str(m["since"])).isoformat())


@dataclass
class _Viewer:
    scope: Scope
    queue: asyncio.Queue[Message | None]

    def sees(self, department_id: int) -> bool:
        return self.scope is None or department_id in self.scope


@dataclass
class _Feed:
    url: str
    task: asyncio.Task[None]
    calls: dict[str, LiveCall] = field(default_factory=dict)
    agents: dict[str, LiveAgent] = field(default_factory=dict)
    lines: tuple[int, int, int] = (0, 0, 0)  # in use, cap, dialled in the last minute


class WallboardHub:
    """Follows every dialer's feed and serves the merged picture to viewers."""

    def __init__(self, db: Database, clock: Clock, *, discover_every_s: float = 5.0,
                 max_backlog: int = 5_000,
                 client: Callable[[], httpx.AsyncClient] = httpx.AsyncClient) -> None:
        self._db = db
        self._clock = clock
        self._discover_every_s = discover_every_s
        self._max_backlog = max_backlog
        self._client = client
        self._feeds: dict[str, _Feed] = {}
        self._viewers: list[_Viewer] = []
        self._runner: asyncio.Task[None] | None = None

    # -- viewers ---------------------------------------------------------------------------

    def subscribe(self, scope: Scope) -> asyncio.Queue[Message | None]:
        """A queue with a snapshot of what `scope` may see, then every change."""
        self._start()
        viewer = _Viewer(scope, asyncio.Queue())
        viewer.queue.put_nowait({"type": "snapshot",
                                 "calls": [c.message() for c in self.calls()
                                           if viewer.sees(c.department_id)],
                                 "agents": [a.message() for f in self._feeds.values()
                                            for a in f.agents.values()],
                                 "lines": self.lines()})
        self._viewers.append(viewer)
        return viewer.queue

    def unsubscribe(self, queue: asyncio.Queue[Message | None]) -> None:
        self._viewers = [v for v in self._viewers if v.queue is not queue]

    def calls(self) -> list[LiveCall]:
        return [c for feed in self._feeds.values() for c in feed.calls.values()]

    def lines(self) -> Message:
        in_use = sum(f.lines[0] for f in self._feeds.values())
        cap = sum(f.lines[1] for f in self._feeds.values())
        per_min = sum(f.lines[2] for f in self._feeds.values())
        return {"type": "lines", "in_use": in_use, "max": cap, "dialled_last_min": per_min,
                "dialers": len(self._feeds)}

    def _send(self, message: Message, department_id: int | None = None) -> None:
        for viewer in list(self._viewers):
            if department_id is not None and not viewer.sees(department_id):
                continue
            if viewer.queue.qsize() >= self._max_backlog:  # too slow: it reconnects
                self.unsubscribe(viewer.queue)
                viewer.queue.put_nowait(None)
            else:
                viewer.queue.put_nowait(message)

    # -- feeds -----------------------------------------------------------------------------

    def _start(self) -> None:
        if self._runner is None or self._runner.done():
            self._runner = asyncio.get_running_loop().create_task(self._discover(),
                                                                  name="wallboard-discover")

    async def close(self) -> None:
        tasks = [f.task for f in self._feeds.values()]
        if self._runner is not None:
            tasks.append(self._runner)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _discover(self) -> None:
        while True:
            try:
                found = await self._db.call(self._live)
            except Exception as exc:  # the store is away: keep following the known feeds
                log.warning("wallboard: cannot read the live feeds (%s)", exc)
                found = {owner: f.url for owner, f in self._feeds.items()}
            for owner, url in found.items():
                feed = self._feeds.get(owner)
                if feed is None or feed.url != url or feed.task.done():
                    if feed is not None:
                        feed.task.cancel()
                    task = asyncio.get_running_loop().create_task(
                        self._follow(owner, url), name=f"wallboard-feed-{owner}")
                    self._feeds[owner] = _Feed(url, task)
            for owner in set(self._feeds) - set(found):
                self._feeds[owner].task.cancel()
                self._forget(owner)
            await asyncio.sleep(self._discover_every_s)

    def _live(self) -> dict[str, str]:
        with self._db.session() as s:
            return live_feeds(s, self._clock.now())

    async def _follow(self, owner: str, url: str) -> None:
        try:
            async with self._client() as client, \
                    client.stream("GET", url, timeout=httpx.Timeout(5.0, read=None)) as r:
                async for line in r.aiter_lines():
                    if line.startswith("data: "):
                        self._apply(owner, line[6:])
        except (httpx.HTTPError, OSError) as exc:
            log.info("wallboard: feed %s lost (%s); looking again shortly", owner, exc)
        finally:
            with contextlib.suppress(KeyError):
                self._forget(owner, keep_feed=True)

    def _forget(self, owner: str, keep_feed: bool = False) -> None:
        """Drop a dialer's calls (its feed ended): viewers see them leave."""
        feed = self._feeds[owner]
        for call in feed.calls.values():
            self._send({"type": "end", "key": call.key}, call.department_id)
        for key in feed.agents:
            self._send({"type": "agent_gone", "key": key})
        feed.calls.clear()
        feed.agents.clear()
        feed.lines = (0, 0, 0)
        if not keep_feed:
            del self._feeds[owner]
        self._send(self.lines())

    def _apply(self, owner: str, data: str) -> None:
        feed = self._feeds.get(owner)
        if feed is None:
            return
        try:
            m = json.loads(data)
            kind = m["type"]
            if kind == "snapshot":
                gone = set(feed.calls)
                for item in m["calls"]:
                    call = parse_call(owner, item)
                    gone.discard(call.key)
                    feed.calls[call.key] = call
                    self._send(call.message(), call.department_id)
                for key in gone:
                    old = feed.calls.pop(key)
                    self._send({"type": "end", "key": key}, old.department_id)
                for item in m.get("agents", []):
                    self._take_agent(feed, parse_agent(owner, item))
                self._take_lines(feed, m["lines"])
            elif kind == "agent":
                self._take_agent(feed, parse_agent(owner, m))
            elif kind == "call":
                call = parse_call(owner, m)
                feed.calls[call.key] = call
                self._send(call.message(), call.department_id)
            elif kind == "end":
                key = f"{owner}/{int(m['attempt'])}"
                if key in feed.calls:
                    old = feed.calls.pop(key)
                    self._send({"type": "end", "key": key}, old.department_id)
            elif kind == "lines":
                self._take_lines(feed, m)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("wallboard: feed %s sent a message it cannot read (%s): %.200s",
                        owner, exc, data)

    def _take_agent(self, feed: _Feed, agent: LiveAgent) -> None:
        feed.agents[agent.key] = agent
        self._send(agent.message())  # the queues serve every department

    def _take_lines(self, feed: _Feed, m: Message) -> None:
        feed.lines = (int(m["in_use"]), int(m["max"]), int(m["dialled_last_min"]))
        self._send(self.lines())
