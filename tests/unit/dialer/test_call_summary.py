"""A handoff is done only when a person took the call: what the store records otherwise."""

from __future__ import annotations

import datetime as dt

from core.enums import DialOutcome, ScriptOutcome, Severity, TicketReason
from dialer.call_plan import AttemptId, CallPlan
from dialer.call_result import combine
from dialer.call_summary import summarise_report
from dialer.claims import ClaimedTask
from dialer.telephony import AgentLeg, CallReport
from ivr.call_context import CallContext
from ivr.prompts import PromptContext
from ivr.results import RedFlagHit, ScriptResult

NOW = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)


def _plan(result: ScriptResult) -> CallPlan:
    task = ClaimedTask(1, 1, 1, 1, "+8613800138000", "zh-CN", "Asia/Shanghai",
                       (("s", 1),), 0, 3, 50)
    plan = CallPlan(AttemptId(9), task, task.phone, (), CallContext(PromptContext(), 1960))
    plan.result = combine([result])
    return plan


def _red_flag_transfer() -> ScriptResult:
    result = ScriptResult("s", 1, "zh-CN", ScriptOutcome.TRANSFERRED,
                          transferred_to="followup-nurses")
    result.red_flags.append(RedFlagHit("pain", Severity.HIGH, "pain 9/10", "value >= 8",
                                       transferred=True))
    return result


def _report(agent: AgentLeg | None) -> CallReport:
    return CallReport(AttemptId(9), DialOutcome.ANSWERED, True, queue="followup-nurses",
                      agent=agent, answered_at=NOW)


def test_a_red_flag_nobody_answered_keeps_its_ticket() -> None:
    summary = summarise_report(_report(None), _plan(_red_flag_transfer()))
    assert summary.script is ScriptOutcome.HANDOFF_UNANSWERED
    assert [(t.reason, t.severity, t.question_id) for t in summary.tickets] == [
        (TicketReason.RED_FLAG, Severity.HIGH, "pain")]
    assert "followup-nurses" in summary.tickets[0].summary
    assert summary.agent is None


def test_a_nurse_who_took_the_call_makes_it_transferred() -> None:
    nurse = AgentLeg("followup-nurses", "PJSIP/2101", "Nurse 2101", 4, 95, "agent")
    summary = summarise_report(_report(nurse), _plan(_red_flag_transfer()))
    assert summary.script is ScriptOutcome.TRANSFERRED and summary.tickets == ()
    assert (summary.agent, summary.talk_time_s) == ("Nurse 2101", 95)


def test_a_request_for_a_person_nobody_answered_becomes_a_call_back_ticket() -> None:
    result = ScriptResult("s", 1, "zh-CN", ScriptOutcome.TRANSFERRED,
                          transferred_to="followup-agents")
    summary = summarise_report(_report(None), _plan(result))
    assert summary.script is ScriptOutcome.HANDOFF_UNANSWERED
    assert [t.reason for t in summary.tickets] == [TicketReason.ASKED_FOR_PERSON]
