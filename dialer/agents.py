"""The nurses' and agents' states in the handoff queues, for the wallboard.

A backend that knows its queues' members reports each change as an `AgentStatus` to the
listener given to `watch_agents`: Asterisk from AMI (`QueueMemberStatus`, and `QueueStatus`
after each connect), the sim from its simulated staff. `member_state` turns Asterisk's
device state and pause flag into the words a supervisor uses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Protocol, runtime_checkable


class AgentState(StrEnum):
    AVAILABLE = "available"
    RINGING = "ringing"
    TALKING = "talking"
    PAUSED = "paused"
    UNAVAILABLE = "unavailable"  # logged out, unreachable, or gone from the queue


class DeviceState(IntEnum):
    """Asterisk's device states as `QueueMemberStatus` numbers them (`Status:`)."""

    UNKNOWN = 0
    NOT_INUSE = 1
    INUSE = 2
    BUSY = 3
    INVALID = 4
    UNAVAILABLE = 5
    RINGING = 6
    RINGINUSE = 7
    ONHOLD = 8


_BY_DEVICE = {DeviceState.NOT_INUSE: AgentState.AVAILABLE,
              DeviceState.INUSE: AgentState.TALKING, DeviceState.BUSY: AgentState.TALKING,
              DeviceState.ONHOLD: AgentState.TALKING, DeviceState.RINGING: AgentState.RINGING,
              DeviceState.RINGINUSE: AgentState.RINGING}


def member_state(status: int | None, paused: bool, in_call: bool) -> AgentState:
    """A queue member's state: on a call first, then paused, then its device's state."""
    if in_call:
        return AgentState.TALKING
    if paused:
        return AgentState.PAUSED
    try:
        device = DeviceState(status if status is not None else 0)
    except ValueError:
        return AgentState.UNAVAILABLE
    return _BY_DEVICE.get(device, AgentState.UNAVAILABLE)


@dataclass(frozen=True, slots=True)
class AgentStatus:
    queue: str
    member: str  # the member's name as the queue knows it ("Nurse Wang", "Agent 2001")
    state: AgentState
    at: dt.datetime


AgentListener = Callable[[AgentStatus], None]


@runtime_checkable
class AgentSource(Protocol):
    """A telephony backend that reports its queue members' states."""

    def watch_agents(self, listener: AgentListener) -> None: ...
