"""What the IVR did on one call, over all its merged scripts, and what a handoff that no
person took turns into."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.enums import ScriptOutcome, Severity, TicketReason
from core.ticket_texts import TicketText, ticket_text
from ivr.results import ScriptResult, TicketRequest

# The order in which merged scripts' outcomes decide the call's outcome.
_PRECEDENCE = (ScriptOutcome.OPTED_OUT, ScriptOutcome.IDENTITY_FAILED, ScriptOutcome.REFUSED,
               ScriptOutcome.TRANSFERRED, ScriptOutcome.PARTIAL, ScriptOutcome.ESCALATED,
               ScriptOutcome.COMPLETED)


@dataclass(frozen=True)
class CallIvrResult:
    """The whole call's IVR result (one or more merged scripts)."""

    outcome: ScriptOutcome
    results: tuple[ScriptResult, ...] = ()
    tickets: tuple[TicketRequest, ...] = ()
    opted_out: bool = False
    transferred_to: str | None = None
    red_flags: int = 0

    @property
    def transferring_result(self) -> ScriptResult | None:
        """The script result that handed the call to a queue, if any."""
        return next((r for r in self.results if r.transferred_to), None)


def combine(results: Sequence[ScriptResult]) -> CallIvrResult:
    outcomes = {r.outcome for r in results}
    outcome = next((o for o in _PRECEDENCE if o in outcomes), ScriptOutcome.PARTIAL)
    return CallIvrResult(
        outcome=outcome, results=tuple(results),
        tickets=tuple(t for r in results for t in r.tickets),
        opted_out=any(r.opted_out for r in results),
        transferred_to=next((r.transferred_to for r in results if r.transferred_to), None),
        red_flags=sum(len(r.red_flags) for r in results))


def unanswered_handoff_tickets(result: CallIvrResult, staff_language: str
                               ) -> tuple[TicketRequest, ...]:
    """The tickets a handoff nobody took must raise: each red flag that was sent to the
    nurse queue keeps its severity and summary; a request for a person (the 0 key)
    becomes an `asked_for_person` ticket."""
    source = result.transferring_result
    if source is None:
        return ()
    queue = source.transferred_to or ""
    flags = [h for h in source.red_flags if h.transferred]
    if flags:
        return tuple(TicketRequest(TicketReason.RED_FLAG, h.severity,
                                   ticket_text(staff_language, TicketText.NOBODY_ANSWERED,
                                               summary=h.summary, queue=queue),
                                   source.script_id, h.question_id) for h in flags)
    return (TicketRequest(TicketReason.ASKED_FOR_PERSON, Severity.LOW,
                          ticket_text(staff_language, TicketText.PERSON_NOBODY_ANSWERED,
                                      queue=queue),
                          source.script_id),)
