"""AMI framing and typed events: recorded traffic parses; garbage never raises."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.enums import HangupCause
from dialer.asterisk.ami_frame import AmiFrame, AmiValueError, split_stream
from dialer.asterisk.ami_messages import (
    AgentComplete,
    AgentConnect,
    ChannelStatus,
    CoreShowChannel,
    DialEnd,
    Hangup,
    ListComplete,
    OriginateResponse,
    parse_event,
    parse_response,
)
from dialer.asterisk.dial_outcome import OriginateReason

AMI = Path(__file__).resolve().parents[2] / "fixtures" / "asterisk" / "ami"


def frames(name: str) -> list[AmiFrame]:
    text = (AMI / f"{name}.server.txt").read_bytes().decode("utf-8").split("\r\n", 1)[1]
    blocks, _ = split_stream(text)
    return [AmiFrame.parse(b) for b in blocks]


def test_missing_header_is_none_not_empty() -> None:
    f = AmiFrame.parse("Event: Hangup\r\nAccountCode: \r\nCause: 17")
    assert f.get("AccountCode") == ""
    assert f.get("Nope") is None
    assert f.get("cause") == "17"


def test_unknown_endpoint_originate_response() -> None:
    ev = [parse_event(f) for f in frames("originate_unknown_endpoint")]
    orig = [e for e in ev if isinstance(e, OriginateResponse)]
    assert orig == [OriginateResponse(action_id="orig-originate_unknown_endpoint",
                                      success=False, reason=OriginateReason.FAILURE,
                                      channel="PJSIP/9999", uniqueid=None)]


def test_busy_events_are_typed() -> None:
    ev = [parse_event(f) for f in frames("originate_busy")]
    dial_end = next(e for e in ev if isinstance(e, DialEnd))
    assert dial_end.status == "BUSY" and dial_end.dest_uniqueid == "1795652867.1"
    assert dial_end.uniqueid is None
    hangup = next(e for e in ev if isinstance(e, Hangup))
    assert hangup.cause is HangupCause.USER_BUSY and hangup.cause_code == 17


def test_agent_events_carry_times() -> None:
    ev = [parse_event(f) for f in frames("originate_ivr_to_queue")]
    connect = next(e for e in ev if isinstance(e, AgentConnect))
    complete = next(e for e in ev if isinstance(e, AgentComplete))
    assert connect.queue == "followup-agents" and connect.hold_time is not None
    assert connect.ring_time is not None
    assert complete.talk_time == 10 and complete.reason


def test_action_responses_and_lists() -> None:
    fs = frames("actions_misc")
    responses = [r for r in (parse_response(f) for f in fs) if r is not None]
    by_id = {r.action_id: r for r in responses}
    assert by_id["ping-3"].success and by_id["ping-3"].field("Ping") == "Pong"
    assert not by_id["nosuchaction-13"].success
    assert by_id["getvar-11"].field("Value") == "agi://127.0.0.1:4573/followup"
    complete = [e for e in (parse_event(f) for f in fs) if isinstance(e, ListComplete)]
    assert ListComplete("coreshowchannels-9", "CoreShowChannelsComplete", 0) in complete


def test_core_show_channel_and_status_variables() -> None:
    csc = parse_event(AmiFrame.parse(
        "Event: CoreShowChannel\nActionID: a\nChannel: PJSIP/1001-00000000\nChannelState: 6\n"
        "Uniqueid: 1.0\nLinkedid: 1.0\nApplication: AGI\nDuration: 00:00:05"))
    assert isinstance(csc, CoreShowChannel)
    assert (csc.uniqueid, csc.state, csc.application) == ("1.0", 6, "AGI")
    st_ev = parse_event(AmiFrame.parse(
        "Event: Status\nActionID: b\nChannel: PJSIP/1001-00000000\nUniqueid: 1.0\n"
        "Variable: FOLLOWUP_ATTEMPT=42\nVariable: OTHER=a=b"))
    assert isinstance(st_ev, ChannelStatus)
    assert st_ev.variable("FOLLOWUP_ATTEMPT") == "42"
    assert st_ev.variable("OTHER") == "a=b"


def test_header_injection_is_refused() -> None:
    with pytest.raises(AmiValueError):
        AmiFrame.build(("Action", "Originate"),
                       ("CallerID", "x\r\nAction: Command\r\nCommand: core stop now")).to_bytes()


def test_every_recorded_message_parses() -> None:
    count = 0
    for path in AMI.glob("*.server.txt"):
        for f in frames(path.name.split(".")[0]):
            parse_event(f)
            parse_response(f)
            count += 1
    assert count > 700


@given(st.text(max_size=400))
def test_garbage_never_raises(text: str) -> None:
    blocks, _ = split_stream(text)
    for block in blocks:
        frame = AmiFrame.parse(block)
        parse_event(frame)
        parse_response(frame)


@given(st.sampled_from(["OriginateResponse", "Hangup", "VarSet", "DialEnd", "AgentComplete",
                        "Status", "CoreShowChannel", "Cdr", "DTMFEnd", "Newstate"]),
       st.lists(st.tuples(st.sampled_from(["Uniqueid", "Reason", "Cause", "ChannelState",
                                           "TalkTime", "Response", "Variable", "DialStatus"]),
                          st.text(max_size=12).filter(lambda s: "\n" not in s
                                                      and "\r" not in s))))
def test_typed_events_survive_any_values(name: str, pairs: list[tuple[str, str]]) -> None:
    frame = AmiFrame.build(("Event", name), *pairs)
    parse_event(AmiFrame.parse(frame.to_bytes().decode()))
