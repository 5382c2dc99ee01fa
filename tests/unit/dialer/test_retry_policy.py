"""Every retry path of the default policy."""

from __future__ import annotations

import datetime as dt

import pytest

from core.enums import DialOutcome, ScriptOutcome, TaskStatus, TicketReason
from dialer.retry_policy import RetryPolicy

NOW = dt.datetime(2026, 3, 10, 2, 0, tzinfo=dt.UTC)
P = RetryPolicy()


@pytest.mark.parametrize(
    ("dial", "delay"),
    [
        (DialOutcome.BUSY, dt.timedelta(minutes=15)),
        (DialOutcome.NO_ANSWER, dt.timedelta(hours=2)),
        (DialOutcome.UNREACHABLE, dt.timedelta(hours=4)),
        (DialOutcome.CONGESTION, dt.timedelta(minutes=15)),
    ],
)
def test_network_outcomes_retry_after_their_delay(dial: DialOutcome, delay: dt.timedelta) -> None:
    d = P.decide(dial=dial, script=None, attempts_after=1, max_attempts=3, now=NOW)
    assert d.status is TaskStatus.PENDING and d.next_attempt_at == NOW + delay
    assert d.counts_as_attempt and d.ticket is None


def test_last_attempt_raises_a_callback_ticket() -> None:
    d = P.decide(dial=DialOutcome.NO_ANSWER, script=None, attempts_after=3, max_attempts=3,
                 now=NOW)
    assert d.status is TaskStatus.FAILED and d.ticket is TicketReason.ATTEMPTS_EXHAUSTED


def test_failed_originate_does_not_count_and_never_exhausts() -> None:
    d = P.decide(dial=DialOutcome.FAILED, script=None, attempts_after=3, max_attempts=3, now=NOW)
    assert d.status is TaskStatus.PENDING and not d.counts_as_attempt
    assert d.next_attempt_at == NOW + dt.timedelta(minutes=5)


def test_invalid_number_stops_with_a_ticket() -> None:
    d = P.decide(dial=DialOutcome.INVALID_NUMBER, script=None, attempts_after=1, max_attempts=3,
                 now=NOW)
    assert d.status is TaskStatus.STOPPED and d.ticket is TicketReason.INVALID_NUMBER


@pytest.mark.parametrize("script", [ScriptOutcome.COMPLETED, ScriptOutcome.TRANSFERRED,
                                    ScriptOutcome.ESCALATED])
def test_finished_scripts_end_the_task(script: ScriptOutcome) -> None:
    d = P.decide(dial=DialOutcome.ANSWERED, script=script, attempts_after=1, max_attempts=3,
                 now=NOW)
    assert d.status is TaskStatus.DONE


@pytest.mark.parametrize("script", [ScriptOutcome.REFUSED, ScriptOutcome.OPTED_OUT,
                                    ScriptOutcome.IDENTITY_FAILED])
def test_refusal_and_opt_out_stop_for_good(script: ScriptOutcome) -> None:
    d = P.decide(dial=DialOutcome.ANSWERED, script=script, attempts_after=1, max_attempts=3,
                 now=NOW)
    assert d.status is TaskStatus.STOPPED and d.next_attempt_at is None


def test_partial_retries_to_resume() -> None:
    d = P.decide(dial=DialOutcome.ANSWERED, script=ScriptOutcome.PARTIAL, attempts_after=1,
                 max_attempts=3, now=NOW)
    assert d.status is TaskStatus.PENDING and d.next_attempt_at == NOW + dt.timedelta(hours=2)
    assert d.reason == "partial"


def test_unknown_after_crash_retries_and_counts() -> None:
    d = P.decide(dial=None, script=None, attempts_after=1, max_attempts=3, now=NOW)
    assert d.status is TaskStatus.PENDING and d.counts_as_attempt
    assert d.next_attempt_at == NOW + dt.timedelta(minutes=30)


def test_delays_are_configurable() -> None:
    policy = RetryPolicy(delays={"busy": dt.timedelta(minutes=3)})
    d = policy.decide(dial=DialOutcome.BUSY, script=None, attempts_after=1, max_attempts=3,
                      now=NOW)
    assert d.next_attempt_at == NOW + dt.timedelta(minutes=3)


@pytest.mark.parametrize(("language", "exhausted", "invalid"), [
    ("zh-CN", "已拨打 3 次，最后一次仍无人接听", "号码无效"),
    ("en-US", "no answer after the last of 3 attempts", "invalid number"),
])
def test_ticket_summaries_are_in_the_staffs_language(language: str, exhausted: str,
                                                     invalid: str) -> None:
    policy = RetryPolicy(staff_language=language)
    last = policy.decide(dial=DialOutcome.NO_ANSWER, script=None, attempts_after=3,
                         max_attempts=3, now=NOW)
    assert last.ticket is TicketReason.ATTEMPTS_EXHAUSTED and last.reason == exhausted
    bad = policy.decide(dial=DialOutcome.INVALID_NUMBER, script=None, attempts_after=1,
                        max_attempts=3, now=NOW)
    assert bad.ticket is TicketReason.INVALID_NUMBER and bad.reason == invalid
