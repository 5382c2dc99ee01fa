"""Replay each recorded AMI server stream through the real parser and the call tracker."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.enums import CallProgress, DialOutcome, HangupCause
from dialer.asterisk.ami_frame import AmiFrame, split_stream
from dialer.asterisk.ami_messages import (
    AgentComplete,
    AgentConnect,
    AmiEvent,
    Hangup,
    OriginateResponse,
    VarSet,
    parse_event,
)
from dialer.asterisk.call_tracker import CallTracker, LiveChannel
from dialer.asterisk.dial_outcome import OriginateReason, map_dial_outcome
from dialer.call_plan import AttemptId
from dialer.telephony import CallReport

AMI = Path(__file__).resolve().parents[2] / "fixtures" / "asterisk" / "ami"
T0 = dt.datetime(2026, 3, 10, 1, 0, tzinfo=dt.UTC)


def lab_attempt(text: str) -> AttemptId:
    """The lab recordings carry `FOLLOWUP_TASK=task-1001`: the number is the attempt."""
    return AttemptId(int(text.rsplit("-", 1)[-1]))


def recorded_events(name: str) -> list[AmiEvent]:
    text = (AMI / f"{name}.server.txt").read_bytes().decode("utf-8")
    text = text.split("\r\n", 1)[1]  # the banner line
    blocks, rest = split_stream(text)
    assert rest.strip() == ""
    events = [parse_event(AmiFrame.parse(b)) for b in blocks]
    return [e for e in events if e is not None]


def originate_action_id(name: str) -> str:
    """The ActionID the recorded client gave its Originate."""
    client = (AMI / f"{name}.client.txt").read_bytes().decode("utf-8")
    blocks, _ = split_stream(client)
    frames = [AmiFrame.parse(b) for b in blocks]
    return next(f.action_id or "" for f in frames if f.get("Action") == "Originate")


def replay(name: str, events: list[AmiEvent] | None = None) -> list[CallReport]:
    tracker = CallTracker(attempt_variable="FOLLOWUP_TASK", attempt_of=lab_attempt)
    attempt = {
        "originate_answered_ivr": "task-1001", "originate_busy": "task-1002",
        "originate_noanswer": "task-1003", "originate_unreachable": "task-1005",
        "originate_unknown_endpoint": "task-9999", "originate_queue_agents": "task-1004",
        "originate_ivr_to_queue": "task-1007",
        "originate_baresip_hangup_midprompt": "task-1006",
        "originate_baresip_noinput": "task-1006",
    }[name]
    tracker.expect(attempt, originate_action_id(name))
    reports: list[CallReport] = []
    now = T0
    for event in events if events is not None else recorded_events(name):
        now += dt.timedelta(milliseconds=10)
        reports.extend(tracker.feed(event, now))
    assert tracker.in_flight == frozenset()
    return reports


@pytest.mark.parametrize(("name", "outcome", "dialled", "cause"), [
    ("originate_answered_ivr", DialOutcome.ANSWERED, True, 0),
    ("originate_busy", DialOutcome.BUSY, True, 17),
    ("originate_noanswer", DialOutcome.NO_ANSWER, True, 19),
    ("originate_unreachable", DialOutcome.UNREACHABLE, True, 19),
    ("originate_unknown_endpoint", DialOutcome.INVALID_NUMBER, False, None),
    ("originate_queue_agents", DialOutcome.ANSWERED, True, 16),
    ("originate_ivr_to_queue", DialOutcome.ANSWERED, True, 16),
    ("originate_baresip_hangup_midprompt", DialOutcome.ANSWERED, True, None),
    ("originate_baresip_noinput", DialOutcome.ANSWERED, True, None),
])
def test_each_recorded_case_maps_to_its_outcome(name: str, outcome: DialOutcome, dialled: bool,
                                                cause: int | None) -> None:
    reports = replay(name)
    assert len(reports) == 1
    report = reports[0]
    assert report.outcome is outcome
    assert report.dialled is dialled
    if cause is not None:
        assert report.hangup_cause == cause
    assert report.outcome_certain
    if dialled:
        assert report.uniqueid is not None and report.channel.startswith("PJSIP/")
    else:
        assert report.uniqueid is None and report.channel == "PJSIP/9999"


def test_answered_call_has_times_and_the_mixmonitor_file() -> None:
    report = replay("originate_answered_ivr")[0]
    assert report.answered_at is not None and report.ended_at is not None
    assert report.answered_at < report.ended_at
    assert report.recording == Path(
        "/var/lib/followup-lab/recordings/mixmonitor/ivr-task-1001-1795652831.0.wav")
    assert report.uniqueid == report.linkedid == "1795652831.0"
    assert "cdr=ANSWERED" in report.details


def test_queue_handoff_attaches_the_agent_and_talk_time() -> None:
    report = replay("originate_ivr_to_queue")[0]
    assert report.queue == "followup-agents"
    assert report.agent is not None
    assert report.agent.interface == "PJSIP/2001"
    assert report.agent.member_name == "Agent 2001"
    assert report.agent.talk_time_s == 10
    assert report.agent.ended_by in ("caller", "agent")
    # the losing agent's Hangup (cause 26, same Linkedid) did not end the call
    assert report.hangup_cause == 16


def test_queue_agents_recording_losing_agent_does_not_end_the_call() -> None:
    events = recorded_events("originate_queue_agents")
    causes = [e.cause for e in events if isinstance(e, Hangup)]
    assert HangupCause.ANSWERED_ELSEWHERE in causes
    report = replay("originate_queue_agents")[0]
    assert report.agent is not None and report.agent.interface == "PJSIP/2001"


@pytest.mark.parametrize("name", ["originate_busy", "originate_noanswer",
                                  "originate_unreachable", "originate_answered_ivr"])
@given(data=st.data())
def test_originate_response_position_does_not_matter(name: str, data: st.DataObject) -> None:
    events = recorded_events(name)
    expected = replay(name)[0].outcome
    orig = next(e for e in events if isinstance(e, OriginateResponse))
    others = [e for e in events if e is not orig]
    # the attempt variable links the channel; the response may come anywhere after the
    # channel exists, even after its Hangup
    first_link = next(i for i, e in enumerate(others)
                      if isinstance(e, VarSet) and e.variable == "FOLLOWUP_TASK")
    pos = data.draw(st.integers(min_value=first_link + 1, max_value=len(others)))
    shuffled = [*others[:pos], orig, *others[pos:]]
    reports = replay(name, shuffled)
    assert [r.outcome for r in reports] == [expected]


def test_events_of_other_calls_are_ignored() -> None:
    tracker = CallTracker(attempt_variable="FOLLOWUP_TASK", attempt_of=lab_attempt)
    tracker.expect("task-1002", "orig-other")  # a different ActionID
    for event in recorded_events("originate_busy"):
        if isinstance(event, VarSet) and event.variable == "FOLLOWUP_TASK":
            continue  # nor does the channel carry our attempt
        assert tracker.feed(event, T0) == []
    assert tracker.in_flight == {"task-1002"}


def test_rebuild_settles_a_call_that_ended_unseen_and_keeps_a_live_one() -> None:
    tracker = CallTracker(attempt_variable="FOLLOWUP_TASK", attempt_of=lab_attempt)
    tracker.expect("task-1003", "orig-originate_noanswer")
    tracker.expect("task-1001", "orig-originate_answered_ivr")
    tracker.expect("task-7", "orig-never-seen")
    # we saw the start of both calls, then the link dropped
    for name in ("originate_noanswer", "originate_answered_ivr"):
        events = recorded_events(name)
        cut = next(i for i, e in enumerate(events) if isinstance(e, OriginateResponse))
        for event in events[:cut]:
            assert tracker.feed(event, T0) == []
    live = [LiveChannel("1795652831.0", "1795652831.0", "PJSIP/1001-00000000", 6, "task-1001")]
    settled = tracker.rebuild(live, T0)
    by_attempt = {r.attempt_id: r for r in settled}
    assert set(by_attempt) == {1003, 7}
    assert by_attempt[1003].dialled and not by_attempt[1003].outcome_certain
    assert not by_attempt[7].dialled and not by_attempt[7].outcome_certain
    assert tracker.in_flight == {"task-1001"}
    # its OriginateResponse went by while we were away; the Hangup alone finishes it
    end = [e for e in recorded_events("originate_answered_ivr")
           if isinstance(e, Hangup) and e.uniqueid == "1795652831.0"]
    reports = tracker.feed(end[0], T0)
    assert [r.outcome for r in reports] == [DialOutcome.ANSWERED]


@pytest.mark.parametrize(("kwargs", "outcome"), [
    ({"originate_success": False, "reason": OriginateReason.FAILURE, "dial_status": "BUSY",
      "cause": HangupCause.USER_BUSY, "channel_created": True, "ringing": False},
     DialOutcome.BUSY),
    ({"originate_success": False, "reason": OriginateReason.CONGESTION, "dial_status": None,
      "cause": None, "channel_created": True, "ringing": False}, DialOutcome.CONGESTION),
    ({"originate_success": False, "reason": OriginateReason.FAILURE, "dial_status": None,
      "cause": HangupCause.SWITCH_CONGESTION, "channel_created": True, "ringing": False},
     DialOutcome.CONGESTION),
    ({"originate_success": False, "reason": OriginateReason.FAILURE, "dial_status": None,
      "cause": HangupCause.NORMAL_CIRCUIT_CONGESTION, "channel_created": True,
      "ringing": True}, DialOutcome.CONGESTION),
    ({"originate_success": False, "reason": OriginateReason.FAILURE, "dial_status": None,
      "cause": HangupCause.UNALLOCATED, "channel_created": True, "ringing": False},
     DialOutcome.INVALID_NUMBER),
    ({"originate_success": False, "reason": OriginateReason.HANGUP, "dial_status": None,
      "cause": HangupCause.NORMAL_CLEARING, "channel_created": True, "ringing": False},
     DialOutcome.FAILED),
    ({"originate_success": None, "reason": None, "dial_status": None, "cause": None,
      "channel_created": False, "ringing": False}, DialOutcome.FAILED),
])
def test_mapping_beyond_the_recordings(kwargs: dict[str, object], outcome: DialOutcome) -> None:
    assert map_dial_outcome(**kwargs) is outcome  # type: ignore[arg-type]


def test_no_channel_through_a_trunk_is_our_failure_not_an_invalid_number() -> None:
    tracker = CallTracker(attempt_variable="FOLLOWUP_TASK", attempt_of=lab_attempt,
                          number_is_endpoint=False)
    tracker.expect("task-9999", originate_action_id("originate_unknown_endpoint"))
    reports = [r for e in recorded_events("originate_unknown_endpoint")
               for r in tracker.feed(e, T0)]
    assert [(r.outcome, r.dialled) for r in reports] == [(DialOutcome.FAILED, False)]


def test_progress_is_seen_in_order_and_once() -> None:
    tracker = CallTracker(attempt_variable="FOLLOWUP_TASK", attempt_of=lab_attempt)
    tracker.expect("task-1007", originate_action_id("originate_ivr_to_queue"))
    seen = []
    for event in recorded_events("originate_ivr_to_queue"):
        tracker.feed(event, T0)
        seen += [p.progress for p in tracker.drain_progress()]
    assert seen == [CallProgress.DIALLED, CallProgress.RINGING, CallProgress.ANSWERED,
                    CallProgress.IN_QUEUE, CallProgress.CONNECTED]


def test_a_queue_nobody_answers_leaves_the_call_without_an_agent() -> None:
    """The same handoff with the agent's answer taken out (an agent who rings and never
    answers): the call joined the queue, no person took it, so it reports no agent."""
    events = [e for e in recorded_events("originate_ivr_to_queue")
              if not isinstance(e, AgentConnect | AgentComplete)]
    tracker = CallTracker(attempt_variable="FOLLOWUP_TASK", attempt_of=lab_attempt)
    tracker.expect("task-1007", originate_action_id("originate_ivr_to_queue"))
    reports = [r for e in events for r in tracker.feed(e, T0)]
    assert len(reports) == 1
    assert reports[0].queue == "followup-agents" and reports[0].agent is None
    assert CallProgress.CONNECTED not in [p.progress for p in tracker.drain_progress()]
