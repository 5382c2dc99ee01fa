"""The telephony report and the plan's IVR result, turned into what the store records.

A handoff is done only when a person took the call: an IVR that handed the call to a
queue where nobody answered (rang out, the patient gave up waiting, nobody logged in) ends
`handoff_unanswered`, and the red flag's ticket (or the person request's) is raised."""

from __future__ import annotations

from core.enums import DialOutcome, ScriptOutcome
from dialer.attempt_log import CallSummary
from dialer.call_plan import CallPlan
from dialer.call_result import unanswered_handoff_tickets
from dialer.telephony import CallReport


def summarise_report(report: CallReport, plan: CallPlan) -> CallSummary:
    ivr = plan.result
    script: ScriptOutcome | None = ivr.outcome if ivr is not None else None
    tickets = ivr.tickets if ivr is not None else ()
    if script is ScriptOutcome.TRANSFERRED and report.agent is None and ivr is not None:
        script = ScriptOutcome.HANDOFF_UNANSWERED
        tickets = tickets + unanswered_handoff_tickets(ivr, plan.context.staff_language)
    dial = report.outcome
    amd = plan.amd if dial is DialOutcome.ANSWERED else None
    if amd is not None and amd.is_machine:
        dial, script = DialOutcome.MACHINE, None  # nothing was said to it
    elif dial is DialOutcome.ANSWERED and script is None:
        script = ScriptOutcome.PARTIAL  # answered but the IVR never ran: call back
    return CallSummary(
        dial=dial, script=script, amd=amd, hangup_cause=report.hangup_cause,
        tickets=tickets, opted_out=ivr.opted_out if ivr is not None else False,
        recording=report.recording,
        agent=report.agent.member_name if report.agent else None,
        talk_time_s=report.agent.talk_time_s if report.agent else None,
        error=None if report.outcome_certain else "outcome uncertain: " + ", ".join(
            report.details),
        channel=report.channel or None, uniqueid=report.uniqueid, linkedid=report.linkedid,
        answered_at=report.answered_at, trunk=report.trunk, server=report.server,
        voicemail_left=plan.voicemail_left)
