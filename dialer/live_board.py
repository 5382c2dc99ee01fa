"""This dialer's calls as they happen, for the wallboard: a `ProgressBus` subscriber.

Each call in progress is one `LiveCall` (department, script, state, since when), and each
nurse or agent in the handoff queues one `AgentStatus` (`agent`, fed by the backend); every
change is pushed at once, as a small JSON-ready dict, to each subscriber's queue (the live
feed's clients, `dialer.live_feed`). A new subscriber first gets a snapshot. Nothing here
touches the store: the wallboard follows the calls' own events, not the tables.

A subscriber that falls `max_backlog` messages behind is dropped (its queue gets `None`):
it reconnects and starts again from a snapshot, so one slow screen never slows the calls.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from core.clock import Clock
from core.enums import CallProgress
from dialer.agents import AgentStatus
from dialer.call_plan import AttemptId, ProgressEvent

Message = dict[str, Any]
Lines = Callable[[], tuple[int, int]]  # (channels in use, channel cap)


class LiveState(StrEnum):
    """Where a call in progress stands, as a supervisor names it."""

    DIALLING = "dialling"
    RINGING = "ringing"
    IN_IVR = "in_ivr"  # answered: the question script is running
    IN_QUEUE = "in_queue"  # waiting for a nurse or an agent
    WITH_PERSON = "with_person"  # a nurse or an agent took it


_STATE_OF: dict[CallProgress, LiveState] = {
    CallProgress.PLACED: LiveState.DIALLING,
    CallProgress.DIALLED: LiveState.DIALLING,
    CallProgress.RINGING: LiveState.RINGING,
    CallProgress.ANSWERED: LiveState.IN_IVR,
    CallProgress.IN_QUEUE: LiveState.IN_QUEUE,
    CallProgress.CONNECTED: LiveState.WITH_PERSON,
}


@dataclass(slots=True)
class LiveCall:
    attempt_id: AttemptId
    department_id: int
    script_id: str
    state: LiveState
    since: dt.datetime  # when it entered `state`
    placed_at: dt.datetime
    queued_at: dt.datetime | None = None  # when it joined a queue (its wait so far)
    agent: str | None = None

    def message(self) -> Message:
        return {"type": "call", "attempt": self.attempt_id, "department_id": self.department_id,
                "script": self.script_id, "state": self.state.value,
                "since": self.since.isoformat(), "placed_at": self.placed_at.isoformat(),
                "queued_at": self.queued_at.isoformat() if self.queued_at else None,
                "agent": self.agent}


class LiveBoard:
    """The calls in progress in this process, and the subscribers that follow them."""

    def __init__(self, clock: Clock, lines: Lines, *, max_backlog: int = 10_000) -> None:
        self._clock = clock
        self._lines = lines
        self._max_backlog = max_backlog
        self.calls: dict[AttemptId, LiveCall] = {}
        self.agents: dict[tuple[str, str], AgentStatus] = {}  # (queue, member) -> state
        self._subscribers: list[asyncio.Queue[Message | None]] = []
        self._dialled: deque[dt.datetime] = deque()  # when each recent call was dialled

    # -- the calls' events -----------------------------------------------------------------

    def __call__(self, event: ProgressEvent) -> None:
        if event.progress is CallProgress.ENDED:
            if self.calls.pop(event.attempt_id, None) is not None:
                self._push({"type": "end", "attempt": event.attempt_id,
                            "at": event.at.isoformat()})
            return
        call = self.calls.get(event.attempt_id)
        if event.progress is CallProgress.PLACED:
            if event.plan is None:
                return
            call = LiveCall(event.attempt_id, event.plan.task.department_id,
                            event.plan.scripts[0].id if event.plan.scripts
                            else event.plan.task.call_scripts[0][0],
                            LiveState.DIALLING, event.at, event.at)
            self.calls[event.attempt_id] = call
        elif call is None:
            return  # a call placed before this board existed
        else:
            if event.progress is CallProgress.DIALLED:
                self._dialled.append(event.at)
            state = _STATE_OF[event.progress]
            if state is call.state:
                return
            call.state, call.since = state, event.at
            if state is LiveState.IN_QUEUE:
                call.queued_at = event.at
            elif state is LiveState.WITH_PERSON:
                call.agent = event.agent
        self._push(call.message())

    def agent(self, status: AgentStatus) -> None:
        """A queue member's state (`dialer.agents`): pushed when it changes."""
        key = (status.queue, status.member)
        known = self.agents.get(key)
        if known is not None and known.state is status.state:
            return
        self.agents[key] = status
        self._push(_agent_message(status))

    # -- what subscribers receive ------------------------------------------------------------

    def lines(self) -> Message:
        """Channels in use against the cap, and the calls dialled in the last minute."""
        now = self._clock.now()
        while self._dialled and (now - self._dialled[0]).total_seconds() > 60:
            self._dialled.popleft()
        in_use, cap = self._lines()
        return {"type": "lines", "in_use": in_use, "max": cap,
                "dialled_last_min": len(self._dialled), "at": now.isoformat()}

    def snapshot(self) -> Message:
        return {"type": "snapshot", "calls": [c.message() for c in self.calls.values()],
                "agents": [_agent_message(a) for a in self.agents.values()],
                "lines": self.lines()}

    def subscribe(self) -> asyncio.Queue[Message | None]:
        """A queue that gets a snapshot, then every change (None: dropped as too slow)."""
        queue: asyncio.Queue[Message | None] = asyncio.Queue()
        queue.put_nowait(self.snapshot())
        self._subscribers.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Message | None]) -> None:
        if queue in self._subscribers:
            self._subscribers.remove(queue)

    def close(self) -> None:
        """End every subscription (the feed is stopping): each queue gets `None`."""
        for queue in self._subscribers:
            queue.put_nowait(None)
        self._subscribers.clear()

    def tick(self) -> None:
        """Push the lines figure to every subscriber (the feed calls this every second)."""
        self._push(self.lines())

    def _push(self, message: Message) -> None:
        for queue in list(self._subscribers):
            if queue.qsize() >= self._max_backlog:
                self._subscribers.remove(queue)
                queue.put_nowait(None)
            else:
                queue.put_nowait(message)


def _agent_message(status: AgentStatus) -> Message:
    return {"type": "agent", "queue": status.queue, "member": status.member,
            "state": status.state.value, "since": status.at.isoformat()}
