"""Answering-machine detection: Asterisk's verdict read at the edge, and what it decides."""

from __future__ import annotations

import datetime as dt

import pytest

from core.enums import AmdStatus, DialOutcome, TaskStatus
from dialer.answering_machine import AmdVerdict
from dialer.asterisk.agi import AgiRequest
from dialer.call_summary import summarise_report
from dialer.retry_policy import RetryPolicy
from dialer.telephony import CallReport
from tests.unit.dialer.test_call_summary import NOW, _plan, _red_flag_transfer


@pytest.mark.parametrize(("status", "cause", "expected", "machine"), [
    ("MACHINE", "LONGGREETING-2000-1500", AmdVerdict(AmdStatus.MACHINE,
                                                     "LONGGREETING-2000-1500"), True),
    ("MACHINE", "MAXWORDS-3-3", AmdVerdict(AmdStatus.MACHINE, "MAXWORDS-3-3"), True),
    # a person who picks up and waits for the caller to speak is silent too
    ("MACHINE", "INITIALSILENCE-2500-2500", AmdVerdict(AmdStatus.MACHINE,
                                                       "INITIALSILENCE-2500-2500"), False),
    ("HUMAN", "HUMAN-1-800", AmdVerdict(AmdStatus.HUMAN, "HUMAN-1-800"), False),
    ("NOTSURE", "TOOLONG-5000", AmdVerdict(AmdStatus.NOTSURE, "TOOLONG-5000"), False),
    (" machine ", "", AmdVerdict(AmdStatus.MACHINE, ""), True),
    ("HUMAN", "x&y;z\n<>", AmdVerdict(AmdStatus.HUMAN, "xyz"), False),
])
def test_verdicts(status: str, cause: str, expected: AmdVerdict, machine: bool) -> None:
    verdict = AmdVerdict.parse(status, cause)
    assert verdict == expected
    assert verdict is not None and verdict.is_machine is machine


@pytest.mark.parametrize("status", [None, "", "ROBOT", "${AMDSTATUS}"])
def test_no_detection_is_no_verdict(status: str | None) -> None:
    assert AmdVerdict.parse(status, "LONGGREETING-1-1") is None


def test_the_agi_query_carries_the_verdict() -> None:
    request = AgiRequest("followup?attempt=4&amd=MACHINE&amdcause=LONGGREETING-1800-1500",
                         "followup", {"attempt": "4", "amd": "MACHINE",
                                      "amdcause": "LONGGREETING-1800-1500"})
    assert request.amd == AmdVerdict(AmdStatus.MACHINE, "LONGGREETING-1800-1500")
    # AMD off: the dialplan passes empty values
    empty = AgiRequest("followup?attempt=4&amd=&amdcause=", "followup",
                       {"attempt": "4", "amd": "", "amdcause": ""})
    assert empty.amd is None


def test_a_machine_is_an_attempt_retried_at_another_time_of_day() -> None:
    plan = _plan(_red_flag_transfer())
    plan.result = None  # the IVR never ran: nothing was said to the machine
    plan.amd = AmdVerdict(AmdStatus.MACHINE, "LONGGREETING-1800-1500")
    report = CallReport(plan.attempt_id, DialOutcome.ANSWERED, True, answered_at=NOW)
    summary = summarise_report(report, plan)
    assert (summary.dial, summary.script, summary.amd) == (DialOutcome.MACHINE, None, plan.amd)
    decision = RetryPolicy().decide(dial=summary.dial, script=summary.script,
                                    attempts_after=1, max_attempts=3, now=NOW)
    assert decision.status is TaskStatus.PENDING and decision.counts_as_attempt
    assert decision.next_attempt_at == NOW + dt.timedelta(hours=5)
    last = RetryPolicy(staff_language="zh-CN").decide(
        dial=summary.dial, script=summary.script, attempts_after=3, max_attempts=3, now=NOW)
    assert last.status is TaskStatus.FAILED and "答录机" in last.reason


def test_a_silent_person_is_kept_with_its_verdict() -> None:
    plan = _plan(_red_flag_transfer())
    plan.amd = AmdVerdict(AmdStatus.MACHINE, "INITIALSILENCE-2500-2500")
    report = CallReport(plan.attempt_id, DialOutcome.ANSWERED, True, answered_at=NOW)
    summary = summarise_report(report, plan)
    assert summary.dial is DialOutcome.ANSWERED and summary.script is not None
    assert summary.amd == plan.amd  # stored as Asterisk said it
