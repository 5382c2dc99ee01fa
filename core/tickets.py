"""How urgent a ticket is: the one definition of ticket priority and response time.

Direction, pinned by `tests/unit/core/test_tickets.py` and the worklist-order test: a
**lower priority number is worked first**. The worklist orders by severity (most severe
first), then priority ascending, then age. A red flag therefore always lists before "asked
for a person", whatever their severities' ties.

The response time (the ticket's `due_at`, its SLA) depends on the red flag's severity, or
on the reason when there is no severity: a critical red flag is due within the hour. A
hospital sets its own times per reason (`[tickets] response_hours`, `ResponseTimes`); a red
flag with a severity keeps its severity's time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from core.enums import Severity, TicketReason

TICKET_PRIORITY: dict[TicketReason, int] = {
    TicketReason.RED_FLAG: 1,
    TicketReason.CALLING_PAUSED: 5,
    TicketReason.ASKED_FOR_PERSON: 10,
    TicketReason.IDENTITY_FAILED: 30,
    TicketReason.LOW_CONFIDENCE: 40,
    TicketReason.INVALID_NUMBER: 40,
    TicketReason.ATTEMPTS_EXHAUSTED: 50,
    TicketReason.SMS_REPLY: 20,
}

_BY_SEVERITY: dict[Severity, dt.timedelta] = {
    Severity.CRITICAL: dt.timedelta(hours=1),
    Severity.HIGH: dt.timedelta(hours=4),
    Severity.MEDIUM: dt.timedelta(hours=24),
    Severity.LOW: dt.timedelta(hours=72),
}
_BY_REASON: dict[TicketReason, dt.timedelta] = {
    TicketReason.RED_FLAG: dt.timedelta(hours=4),
    TicketReason.ASKED_FOR_PERSON: dt.timedelta(hours=24),
    TicketReason.CALLING_PAUSED: dt.timedelta(hours=1),  # nobody is being called meanwhile
    TicketReason.SMS_REPLY: dt.timedelta(hours=24),
}
_DEFAULT_RESPONSE = dt.timedelta(hours=72)


def ticket_priority(reason: TicketReason) -> int:
    """The priority number of a ticket raised for `reason` (lower is worked first)."""
    return TICKET_PRIORITY[reason]


@dataclass(frozen=True)
class ResponseTimes:
    """How long a ticket may wait for a person, per reason (the defaults above unless the
    hospital set its own)."""

    by_reason: Mapping[TicketReason, dt.timedelta] = field(default_factory=dict)

    def due(self, reason: TicketReason, severity: Severity | None,
            raised_at: dt.datetime) -> dt.datetime:
        """When a person must have acted on the ticket (its SLA deadline)."""
        if severity is not None and reason is TicketReason.RED_FLAG:
            return raised_at + _BY_SEVERITY[severity]
        wait = self.by_reason.get(reason) or _BY_REASON.get(reason, _DEFAULT_RESPONSE)
        return raised_at + wait


DEFAULT_RESPONSE_TIMES = ResponseTimes()


def response_due(reason: TicketReason, severity: Severity | None,
                 raised_at: dt.datetime) -> dt.datetime:
    """The deadline under the default response times (tickets raised before a hospital set
    its own carry theirs in `due_at`)."""
    return DEFAULT_RESPONSE_TIMES.due(reason, severity, raised_at)
