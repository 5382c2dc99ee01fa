"""The `Telephony` seam: place one call, get back how it went.

Implemented by the Asterisk adapter (`dialer.asterisk.telephony.AsteriskTelephony`: AMI
originate + the FastAGI IVR) and by the simulator (`dialer/sim/`). The dialer loop knows
nothing else about telephony.

An attempt counts against the patient's budget only when `CallReport.dialled` is true:
Asterisk really created a channel and dialled, not merely accepted the action.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from core.enums import DialOutcome, ScriptOutcome


@dataclass(frozen=True, slots=True)
class CallRequest:
    """One call to place. `phone` is E.164 (`+8613800138000`)."""

    attempt_id: str
    task_id: str
    phone: str
    caller_id: str  # the hospital's number shown to the patient
    timeout_s: int  # how long to let it ring
    locale: str
    caller_name: str = ""
    variables: tuple[tuple[str, str], ...] = ()  # extra channel variables, if any


class IvrResult(Protocol):
    """What the IVR run reports (`ivr.interpreter.ScriptResult` satisfies it)."""

    @property
    def outcome(self) -> ScriptOutcome: ...


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
    """How one call went, from dial to hangup.

    `outcome_certain` is false when the backend lost sight of the call (e.g. the AMI link
    dropped and the call ended meanwhile): the outcome is then the best guess from what
    was seen, and `dialled` says whether a channel had been seen at all.
    """

    attempt_id: str
    outcome: DialOutcome
    dialled: bool
    hangup_cause: int | None = None
    channel: str = ""
    uniqueid: str | None = None
    linkedid: str | None = None
    answered_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    ivr: IvrResult | None = None
    recording: Path | None = None  # the whole-call recording (MixMonitor), if any
    queue: str | None = None  # the queue the call was transferred to, if any
    agent: AgentLeg | None = None
    outcome_certain: bool = True
    details: tuple[str, ...] = field(default=())  # short facts for logs (DialStatus, Cdr)


@runtime_checkable
class Telephony(Protocol):
    """Places calls. Raises `core.errors.TelephonyUnavailable` when the backend cannot
    take a call now (disconnected, overloaded): retry later, the attempt did not count.
    A busy line, no answer and the like are outcomes in the report, never exceptions."""

    async def place(self, call: CallRequest) -> CallReport: ...
