"""The `Telephony` seam: place one planned call, publish its progress, report how it went.

Implemented by the Asterisk adapter (`dialer.asterisk.backend.AsteriskBackend`: AMI
originate + the FastAGI IVR) and by the simulator (`dialer/sim/`). The dialer loop knows
nothing else about telephony.

An attempt counts against the patient's budget only when the call was really dialled
(`CallProgress.DIALLED` published, `CallReport.dialled`): Asterisk created a channel, not
merely accepted the action.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from core.enums import DialOutcome
from dialer.call_plan import AttemptId, CallPlan, ProgressBus


@dataclass(frozen=True, slots=True)
class AgentLeg:
    """A person the call was handed to (queue member), and for how long they talked."""

    queue: str
    interface: str  # PJSIP/2001
    member_name: str
    hold_time_s: int | None = None
    talk_time_s: int | None = None
    ended_by: str = ""  # AgentComplete Reason: caller / agent / transfer


@dataclass(frozen=True, slots=True)
class CallReport:
    """How one call went, from dial to hangup (the IVR's result is on the plan).

    `outcome_certain` is false when the backend lost sight of the call (e.g. the AMI link
    dropped and the call ended meanwhile): the outcome is then the best guess from what
    was seen, and `dialled` says whether a channel had been seen at all. `agent` is set only
    when a queue member really took the call.
    """

    attempt_id: AttemptId
    outcome: DialOutcome
    dialled: bool
    hangup_cause: int | None = None
    channel: str = ""
    uniqueid: str | None = None
    linkedid: str | None = None
    answered_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    recording: Path | None = None  # the whole-call recording, closed and complete
    queue: str | None = None  # the queue the call joined, if any
    agent: AgentLeg | None = None
    outcome_certain: bool = True
    details: tuple[str, ...] = field(default=())  # short facts for logs (DialStatus, Cdr)
    trunk: str | None = None  # the carrier trunk that carried the call
    server: str | None = None  # the telephony server that placed it


@runtime_checkable
class Telephony(Protocol):
    """Places calls. Raises `core.errors.TelephonyUnavailable` when the backend cannot
    take a call now (disconnected, overloaded): retry later, the attempt did not count.
    A busy line, no answer, a number the backend will not dial and the like are outcomes
    in the report, never exceptions."""

    async def place(self, plan: CallPlan, events: ProgressBus) -> CallReport:
        """Dial `plan.phone`, run the IVR from the plan on answer (its result lands on
        `plan.result`), publish progress on `events` as it happens, and return how the
        call ended once the patient's leg is gone."""
        ...


__all__ = ["AgentLeg", "AttemptId", "CallReport", "Telephony"]
