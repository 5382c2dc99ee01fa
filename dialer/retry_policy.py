"""What happens to a task after an attempt: done, stop, retry later, or a ticket.

Pure: outcome, attempt counts and `now` in, a `RetryDecision` out. Delays are settings,
keyed by `RetryKey`; the defaults are busy +15 min, no answer +2 h, unreachable +4 h, an
answering machine +5 h (someone who is out in the morning may be home later). An
attempt counts when the network really dialled (`DialOutcome.was_dialled`) or the call
failed on our side (`DialOutcome.ERROR`, so a broken call cannot loop forever); a backend
that could not take the call (`FAILED`) is retried soon without using up an attempt.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from core.enums import DialOutcome, ScriptOutcome, TaskStatus, TicketReason
from core.ticket_texts import TicketText, outcome_words, ticket_text


class RetryKey(StrEnum):
    """Why a task is called again: one delay each."""

    BUSY = DialOutcome.BUSY.value
    NO_ANSWER = DialOutcome.NO_ANSWER.value
    UNREACHABLE = DialOutcome.UNREACHABLE.value
    CONGESTION = DialOutcome.CONGESTION.value
    FAILED = DialOutcome.FAILED.value
    ERROR = DialOutcome.ERROR.value
    MACHINE = DialOutcome.MACHINE.value  # a voicemail took it: another time of day
    PARTIAL = ScriptOutcome.PARTIAL.value  # answered, hung up mid-script: resume
    UNKNOWN = "unknown"  # an attempt found live after its dialer died

    @classmethod
    def for_dial(cls, dial: DialOutcome) -> RetryKey:
        if dial is DialOutcome.ANSWERED:
            return cls.PARTIAL  # answered but no script result: resume
        return cls(dial.value)


DEFAULT_DELAYS: dict[RetryKey, dt.timedelta] = {
    RetryKey.BUSY: dt.timedelta(minutes=15),
    RetryKey.NO_ANSWER: dt.timedelta(hours=2),
    RetryKey.UNREACHABLE: dt.timedelta(hours=4),
    RetryKey.CONGESTION: dt.timedelta(minutes=15),
    RetryKey.FAILED: dt.timedelta(minutes=5),
    RetryKey.ERROR: dt.timedelta(minutes=30),
    RetryKey.MACHINE: dt.timedelta(hours=5),
    RetryKey.PARTIAL: dt.timedelta(hours=2),
    RetryKey.UNKNOWN: dt.timedelta(minutes=30),
}

# Script outcomes that finish the task (the call's tickets, if any, are raised with it).
_FINISHED = {ScriptOutcome.COMPLETED, ScriptOutcome.TRANSFERRED, ScriptOutcome.ESCALATED,
             ScriptOutcome.HANDOFF_UNANSWERED}
# Script outcomes after which we must never call again for this task.
_STOP = {ScriptOutcome.REFUSED, ScriptOutcome.OPTED_OUT, ScriptOutcome.IDENTITY_FAILED}


@dataclass(frozen=True, slots=True)
class RetryDecision:
    status: TaskStatus
    next_attempt_at: dt.datetime | None = None
    ticket: TicketReason | None = None
    counts_as_attempt: bool = True
    # why: the retry key when it retries; when it raises a ticket, that ticket's summary in
    # the staff's language
    reason: str = ""


@dataclass(frozen=True)
class RetryPolicy:
    """Delays per `RetryKey`."""

    delays: dict[RetryKey, dt.timedelta] = field(default_factory=lambda: dict(DEFAULT_DELAYS))
    staff_language: str = "en-US"  # the language of the tickets' summaries (`reason`)

    def decide(self, *, dial: DialOutcome | None, script: ScriptOutcome | None,
               attempts_after: int, max_attempts: int, now: dt.datetime) -> RetryDecision:
        """Decide after one attempt. `attempts_after` counts the attempts that count,
        including this one. `dial=None` means the attempt's fate is unknown (found after a
        crash)."""
        if dial is DialOutcome.ANSWERED and script is not None:
            if script in _FINISHED:
                return RetryDecision(TaskStatus.DONE, reason=script.value)
            if script in _STOP:
                return RetryDecision(TaskStatus.STOPPED, reason=script.value)
            key = RetryKey.PARTIAL  # resume at the first unanswered question
        elif dial is DialOutcome.INVALID_NUMBER:
            return RetryDecision(TaskStatus.STOPPED, ticket=TicketReason.INVALID_NUMBER,
                                 reason=ticket_text(self.staff_language,
                                                    TicketText.INVALID_NUMBER))
        elif dial is None:
            key = RetryKey.UNKNOWN
        else:
            key = RetryKey.for_dial(dial)
        counts = dial is None or dial.was_dialled or dial.counts_without_dialling
        if counts and attempts_after >= max_attempts:
            return RetryDecision(TaskStatus.FAILED, ticket=TicketReason.ATTEMPTS_EXHAUSTED,
                                 counts_as_attempt=counts,
                                 reason=ticket_text(
                                     self.staff_language, TicketText.LAST_ATTEMPT,
                                     outcome=outcome_words(self.staff_language, key.value),
                                     attempts=max_attempts))
        delay = self.delays.get(key, DEFAULT_DELAYS[key])
        return RetryDecision(TaskStatus.PENDING, next_attempt_at=now + delay,
                             counts_as_attempt=counts, reason=key.value)
