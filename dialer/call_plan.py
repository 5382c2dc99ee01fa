"""The call as one object: a `CallPlan` built before the originate, and the progress events
the telephony backend publishes while the call goes on.

The campaign builds the plan (claimed task, resolved scripts, the patient's call context
with earlier answers, the pre-rendered opening and greeting) before anything is dialled, so
nothing is read from the store between the answer and the first prompt. The backend reports
dialled / ringing / answered / in queue / connected / ended on a `ProgressBus` as it sees
them; the attempt log, and later the wallboard, subscribe. The IVR leaves its result on the
plan.

`AttemptId` is an int everywhere; only the Asterisk adapter turns it into text (a channel
variable, the AGI query string) and back, at its edge.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NewType

from core.enums import CallProgress
from dialer.answering_machine import AmdVerdict
from dialer.call_result import CallIvrResult
from dialer.claims import ClaimedTask
from ivr.call_context import CallContext
from ivr.channel import Prompt
from ivr.script_model import Script

log = logging.getLogger(__name__)

AttemptId = NewType("AttemptId", int)


@dataclass(eq=False)
class CallPlan:
    """Everything one call needs, ready before the originate. `result` is the IVR's, set
    when the IVR run ends (None: the IVR never ran, e.g. nobody answered)."""

    attempt_id: AttemptId
    task: ClaimedTask
    phone: str  # E.164
    scripts: tuple[Script, ...]
    context: CallContext
    caller_id: str = ""  # the hospital's number shown to the patient
    caller_name: str = ""
    ring_timeout_s: int = 30
    opening: Prompt | None = None  # the first prompt: the hospital's name only
    greeting: Prompt | None = None  # the patient's name: played once identity is verified
    amd: AmdVerdict | None = None  # answering-machine detection, once the call is answered
    # the message an answering machine may be left (the hospital and the call-back number):
    # None unless the script leaves messages and the patient agreed to them
    voicemail: Prompt | None = None
    voicemail_left: bool = False  # the message was played to a machine
    result: CallIvrResult | None = None

    @property
    def locale(self) -> str:
        """The locale the call speaks (its first script's)."""
        return self.scripts[0].locale if self.scripts else self.task.language


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One step of one call, as the backend saw it happen."""

    attempt_id: AttemptId
    progress: CallProgress
    at: dt.datetime
    channel: str = ""
    uniqueid: str | None = None
    linkedid: str | None = None
    queue: str | None = None
    agent: str | None = None  # the member who took the call (CONNECTED)
    plan: CallPlan | None = None  # the whole call, on PLACED (what the wallboard groups by)


ProgressListener = Callable[[ProgressEvent], None]


@dataclass
class ProgressBus:
    """Publishes call progress to every subscriber. A subscriber must not block (it
    schedules its own I/O); one that raises is logged and never disturbs the call or the
    other subscribers."""

    _listeners: list[ProgressListener] = field(default_factory=list)

    def subscribe(self, listener: ProgressListener) -> None:
        self._listeners.append(listener)

    def publish(self, event: ProgressEvent) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a consumer's bug must not end a patient's call
                log.exception("progress listener failed on %s", event)
