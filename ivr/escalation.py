"""Handing a call to people: the 0 key, the 9 key (opt-out), and red-flag answers.

- 0: "connecting you" then a transfer to the agent queue (outcome transferred); refused ->
  a ticket `asked_for_person` and the question is asked again.
- 9: a confirmation (1 confirms) -> opted out, goodbye, hangup; anything else carries on.
- Red flags: the answer is marked with its highest severity before it is saved; then, by
  severity, `transfer` in staffed hours -> the nurse message and a transfer to the nurse
  queue (transferred); otherwise, or when the transfer is refused, a `red_flag` ticket and
  the safety message, and the script goes on (escalated).
Transfers carry the call's channel variables plus FOLLOWUP_REASON, _SCRIPT, _QUESTION and
_SEVERITY.
"""

from __future__ import annotations

from dataclasses import replace

from core.enums import ScriptOutcome, Severity, TicketReason
from core.ticket_texts import TicketText, ticket_text
from ivr.call_state import CallEnded, CallIO, CallState, HungUp, condition_values
from ivr.red_flag_action import RedFlagAction
from ivr.results import Answer, RedFlagHit, TicketRequest
from ivr.script_model import Question, RedFlag, Script


def transfer_variables(state: CallState, reason: str, script: Script, q: Question | None,
                       severity: Severity | None = None) -> dict[str, str]:
    out = dict(state.context.channel_variables)
    out.update({"FOLLOWUP_REASON": reason, "FOLLOWUP_SCRIPT": script.id})
    if q is not None:
        out["FOLLOWUP_QUESTION"] = q.id
    if severity is not None:
        out["FOLLOWUP_SEVERITY"] = severity.value
    return out


class Escalation:
    """The interpreter's hand-offs to people. Raises CallEnded / HungUp to end the run."""

    def __init__(self, io: CallIO) -> None:
        self.io = io

    async def operator(self, state: CallState, script: Script, q: Question | None) -> None:
        await self.io.message(state, script, "operator")
        queue = state.context.agent_queue
        if await state.channel.transfer(queue, transfer_variables(state, "operator", script,
                                                                  q)):
            state.result.transferred_to = queue
            raise CallEnded(ScriptOutcome.TRANSFERRED)
        if state.channel.hung_up:
            raise HungUp
        state.result.tickets.append(TicketRequest(
            TicketReason.ASKED_FOR_PERSON, Severity.LOW,
            ticket_text(state.context.staff_language, TicketText.ASKED_FOR_PERSON), script.id,
            q.id if q else None))
        await self.io.message(state, script, "operator_unavailable")

    async def opt_out(self, state: CallState, script: Script) -> None:
        prompt = await self.io.prompt(state, script, "msg.optout_confirm",
                                      script.message("optout_confirm"))
        keys = await self.io.digits(state, prompt, 1, script.timeout_s)
        if keys == "1":
            for r in state.results:
                r.opted_out = True
            await self.io.message(state, script, "optout_done")
            await state.channel.hangup()
            raise CallEnded(ScriptOutcome.OPTED_OUT)
        await self.io.message(state, script, "optout_cancelled")

    @staticmethod
    def mark_red_flags(state: CallState, script: Script, q: Question,
                       answer: Answer) -> Answer:
        """The answer marked with the highest red flag its conditions raise (before it is
        saved); the flags wait in `state.pending_flags` for `act_on_red_flags`."""
        if not answer.answered or not q.red_flags:
            return answer
        values = condition_values(script, state.values[script.id])
        values[q.id] = answer.typed_value()
        values["value"] = answer.typed_value()
        hits = [f for f in q.red_flags if f.condition.holds(values)]
        if not hits:
            return answer
        state.pending_flags = sorted(hits, key=lambda f: -f.severity.rank)
        return replace(answer, red_flag=state.pending_flags[0].severity)

    async def act_on_red_flags(self, state: CallState, script: Script, q: Question) -> None:
        flags, state.pending_flags = state.pending_flags, []
        for flag in flags:
            if flag.action is RedFlagAction.TRANSFER and state.context.staffed_hours:
                await self.io.message(state, script, "nurse_transfer")
                queue = state.context.nurse_queue
                if await state.channel.transfer(
                        queue, transfer_variables(state, "red_flag", script, q,
                                                  flag.severity)):
                    state.result.red_flags.append(RedFlagHit(
                        q.id, flag.severity, flag.summary, flag.condition.source, True))
                    state.result.transferred_to = queue
                    raise CallEnded(ScriptOutcome.TRANSFERRED)
                if state.channel.hung_up:
                    self._ticket(state, script, q, flag)
                    raise HungUp
            self._ticket(state, script, q, flag)
            message = flag.message or script.message("safety")
            key = (f"q.{q.id}.red_flag.{q.red_flags.index(flag)}" if flag.message
                   else "msg.safety")
            await self.io.play(state, script, key, message)

    @staticmethod
    def _ticket(state: CallState, script: Script, q: Question, flag: RedFlag) -> None:
        state.result.red_flags.append(RedFlagHit(q.id, flag.severity, flag.summary,
                                                 flag.condition.source, False))
        state.result.tickets.append(TicketRequest(TicketReason.RED_FLAG, flag.severity,
                                                  flag.summary, script.id, q.id))
        state.escalated.add(script.id)
