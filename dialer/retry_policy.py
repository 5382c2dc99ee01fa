"""What happens to a task after an attempt: done, stop, retry later, or a ticket.

Pure: outcome, attempt counts and `now` in, a `RetryDecision` out. Delays are settings;
the defaults are the issue's (busy +15 min, no answer +2 h, unreachable +4 h). An attempt
counts only when the network really dialled (`DialOutcome.was_dialled`): a failed originate
is retried soon without using up one of the patient's attempts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from core.enums import DialOutcome, ScriptOutcome, TaskStatus, TicketReason

_DEFAULT_DELAYS: dict[str, dt.timedelta] = {
    DialOutcome.BUSY.value: dt.timedelta(minutes=15),
    DialOutcome.NO_ANSWER.value: dt.timedelta(hours=2),
    DialOutcome.UNREACHABLE.value: dt.timedelta(hours=4),
    DialOutcome.CONGESTION.value: dt.timedelta(minutes=15),
    DialOutcome.FAILED.value: dt.timedelta(minutes=5),
    ScriptOutcome.PARTIAL.value: dt.timedelta(hours=2),
    "unknown": dt.timedelta(minutes=30),  # an attempt found dialing after a crash
}

# Script outcomes that finish the task (the script's own tickets, if any, are already raised).
_FINISHED = {ScriptOutcome.COMPLETED, ScriptOutcome.TRANSFERRED, ScriptOutcome.ESCALATED}
# Script outcomes after which we must never call again for this task.
_STOP = {ScriptOutcome.REFUSED, ScriptOutcome.OPTED_OUT, ScriptOutcome.IDENTITY_FAILED}


@dataclass(frozen=True, slots=True)
class RetryDecision:
    status: TaskStatus
    next_attempt_at: dt.datetime | None = None
    ticket: TicketReason | None = None
    counts_as_attempt: bool = True
    reason: str = ""


@dataclass(frozen=True)
class RetryPolicy:
    """Delays per outcome (keys: DialOutcome / ScriptOutcome values, or 'unknown')."""

    delays: dict[str, dt.timedelta] = field(default_factory=lambda: dict(_DEFAULT_DELAYS))

    def decide(self, *, dial: DialOutcome | None, script: ScriptOutcome | None,
               attempts_after: int, max_attempts: int, now: dt.datetime) -> RetryDecision:
        """Decide after one attempt. `attempts_after` counts dialled attempts including this
        one (the caller does not increment for an undialled one). `dial=None` means the
        attempt's fate is unknown (found after a crash)."""
        if dial is DialOutcome.ANSWERED and script is not None:
            if script in _FINISHED:
                return RetryDecision(TaskStatus.DONE, reason=script.value)
            if script in _STOP:
                return RetryDecision(TaskStatus.STOPPED, reason=script.value)
            key = script.value  # partial: resume at the first unanswered question
        elif dial is DialOutcome.INVALID_NUMBER:
            return RetryDecision(TaskStatus.STOPPED, ticket=TicketReason.INVALID_NUMBER,
                                 reason="invalid number")
        elif dial is None:
            key = "unknown"
        elif dial is DialOutcome.ANSWERED:
            key = ScriptOutcome.PARTIAL.value  # answered but no script result: resume
        else:
            key = dial.value
        counts = dial is None or dial.was_dialled
        if counts and attempts_after >= max_attempts:
            return RetryDecision(TaskStatus.FAILED, ticket=TicketReason.ATTEMPTS_EXHAUSTED,
                                 counts_as_attempt=counts,
                                 reason=f"{key} after the last of {max_attempts} attempts")
        delay = self.delays.get(key, _DEFAULT_DELAYS.get(key, dt.timedelta(hours=1)))
        return RetryDecision(TaskStatus.PENDING, next_attempt_at=now + delay,
                             counts_as_attempt=counts, reason=key)
