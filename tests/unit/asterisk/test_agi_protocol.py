"""The AGI wire format: result lines, environment, quoting (against recorded Asterisk 22)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.asterisk.agi import (
    AgiProtocolError,
    AgiResultCode,
    command,
    parse_environment,
    parse_result_line,
    quote,
)
from dialer.asterisk.testing import AgiRecording

AGI = Path(__file__).resolve().parents[2] / "fixtures" / "asterisk" / "agi"


@pytest.mark.parametrize(("line", "code", "result", "data", "endpos"), [
    ("200 result=0", AgiResultCode.SUCCESS, 0, "", None),
    ("200 result=1 (task-1001)", AgiResultCode.SUCCESS, 1, "task-1001", None),
    ("200 result= (timeout)", AgiResultCode.SUCCESS, None, "timeout", None),
    ("200 result=50", AgiResultCode.SUCCESS, 50, "", None),
    ("200 result=35 (dtmf) endpos=46400", AgiResultCode.SUCCESS, 35, "dtmf", 46400),
    ("200 result=0 (timeout) endpos=120000", AgiResultCode.SUCCESS, 0, "timeout", 120000),
    ("200 result=-1 endpos=32000", AgiResultCode.SUCCESS, -1, "", 32000),
    ("200 result=0 endpos=37648", AgiResultCode.SUCCESS, 0, "", 37648),
    ("200 result=1 (a b  c) endpos=5", AgiResultCode.SUCCESS, 1, "a b  c", 5),
    ("200 result=1 ()", AgiResultCode.SUCCESS, 1, "", None),
    ("200 result=0 ", AgiResultCode.SUCCESS, 0, "", None),
    ("200 result=0  endpos=8\r", AgiResultCode.SUCCESS, 0, "", 8),
    ("511 Command Not Permitted on a dead channel or intercept routine",
     AgiResultCode.DEAD_CHANNEL, None, "", None),
    ("510 Invalid or unknown command", AgiResultCode.INVALID_COMMAND, None, "", None),
    ("520-Invalid command syntax.  Proper usage follows:", AgiResultCode.USAGE, None, "", None),
])
def test_result_lines_parse_as_recorded(line: str, code: AgiResultCode, result: int | None,
                                        data: str, endpos: int | None) -> None:
    parsed = parse_result_line(line)
    assert parsed.code is code
    assert parsed.result == result
    assert parsed.data == data
    assert parsed.endpos == endpos


def test_dead_channel_results() -> None:
    assert parse_result_line("200 result=-1 endpos=32000").channel_dead
    assert parse_result_line("511 Command Not Permitted").channel_dead
    assert not parse_result_line("200 result=0 endpos=1").channel_dead


def test_every_recorded_response_line_parses() -> None:
    seen = 0
    for dialogue in AGI.glob("*.dialogue.txt"):
        rec = AgiRecording.load(dialogue)
        for ex in rec.exchanges:
            for line in ex.response:
                if line != "HANGUP":
                    parse_result_line(line)
                    seen += 1
    assert seen > 60


@pytest.mark.parametrize("line", ["", "HANGUP", "hello", "999 what", "200 result=abc",
                                  "200 nothing", "20 result=1", "200 result=1 (x)endpos=3",
                                  "200 result=1 (x) endpos=", "200 result=1 (x", "200 result=٣",
                                  "200 result=1 (x) junk"])
def test_garbage_result_lines_raise_protocol_error(line: str) -> None:
    with pytest.raises(AgiProtocolError):
        parse_result_line(line)


@given(st.integers(-1, 10**6), st.none() | st.text(st.characters(
    blacklist_characters=")\n\r", blacklist_categories=("Cs",)), max_size=30),
       st.none() | st.integers(-1, 10**9))
def test_success_lines_parse_back_to_their_parts(result: int, data: str | None,
                                                 endpos: int | None) -> None:
    line = f"200 result={result}" + (f" ({data})" if data is not None else "") \
        + (f" endpos={endpos}" if endpos is not None else "")
    parsed = parse_result_line(line)
    assert (parsed.code, parsed.result, parsed.raw_result, parsed.data, parsed.endpos) == (
        AgiResultCode.SUCCESS, result, str(result), data or "", endpos)


@given(st.text(max_size=200))
def test_result_parser_never_raises_anything_else(line: str) -> None:
    with contextlib.suppress(AgiProtocolError):
        parse_result_line(line)


def test_environment_of_a_recorded_session() -> None:
    rec = AgiRecording.load(AGI / "followup_dtmf_record.dialogue.txt")
    req = parse_environment("\n".join(rec.environment))
    assert req.network_script == "followup?task=task-1001"
    assert req.script == "followup"
    assert req.query == {"task": "task-1001"}
    assert req.attempt_id is None
    assert req.channel == "PJSIP/1001-00000000"
    assert req.uniqueid == "1795652831.0"
    assert req.env["agi_callerid"] == "5550100"
    assert req.env["agi_extension"] == "s"
    assert req.env["agi_accountcode"] == ""
    assert req.env["agi_version"] == "22.10.1"
    assert req.env["agi_network"] == "yes"


def test_environment_attempt_from_query_and_args() -> None:
    req = parse_environment("agi_network_script: followup?attempt=42&x=1\n"
                            "agi_arg_1: a\nagi_arg_2: b c")
    assert req.attempt_id == "42"
    assert req.args == ("a", "b c")


@pytest.mark.parametrize(("query", "lead_ms"), [
    ("recorded=1765075200.120&agi=1765075200.385", 265),  # MixMonitor, then the AGI
    ("recorded=1765075200&agi=1765075201.5", 1500),
    ("agi=1765075200.385", 0),  # an old dialplan: offsets count from the session
    ("recorded=&agi=1765075200.385", 0),  # STRFTIME gave nothing
    ("recorded=1765075201&agi=1765075200", 0),  # backwards: not believed
    ("recorded=1e9&agi=1765075200", 0),
    ("recorded=nan&agi=inf", 0),
    ("recorded=１７６５&agi=1765075200", 0),  # fullwidth digits are not a time
])
def test_recording_lead_from_the_dialplan_times(query: str, lead_ms: int) -> None:
    req = parse_environment(f"agi_network_script: followup?attempt=42&{query}")
    assert req.recording_lead_ms == lead_ms


@pytest.mark.parametrize("lines", [[], ["agi_channel: x"], ["nonsense"], ["foo: bar"],
                                   ["agi_network_script: followup", "agi_x"]])
def test_bad_environment_raises(lines: list[str]) -> None:
    with pytest.raises(AgiProtocolError):
        parse_environment("\n".join(lines))


def test_quote_neutralises_injection() -> None:
    evil = 'Zhang "San"\nHANGUP\r\\'
    q = quote(evil)
    assert "\n" not in q and "\r" not in q
    assert q == '"Zhang \\"San\\"HANGUP\\\\"'
    assert command("SET VARIABLE", "X", evil) == f'SET VARIABLE "X" {q}'


def _unquote(arg: str) -> str:
    """Asterisk's parse_args for one quoted argument: backslash escapes, quotes delimit."""
    assert arg.startswith('"') and arg.endswith('"')
    out, i, body = [], 0, arg[1:-1]
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            i += 1
            out.append(body[i])
        else:
            assert ch != '"', "an unescaped quote would end the argument early"
            out.append(ch)
        i += 1
    return "".join(out)


@given(st.text(max_size=100))
def test_quote_round_trips_through_asterisk_parsing(value: str) -> None:
    q = quote(value)
    assert "\n" not in q and "\r" not in q
    expected = value.replace("\r", "").replace("\n", "").replace("\x00", "")
    assert _unquote(q) == expected
