"""AgiChannel + FastAgiServer over a real socket, Asterisk played by recorded traffic.

Each recorded FastAGI case (tests/fixtures/asterisk/agi) maps to the right Channel results.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from core.clock import FakeClock
from dialer.asterisk.agi import AgiRequest
from dialer.asterisk.agi_channel import AgiChannel
from dialer.asterisk.fastagi import FastAgiServer
from dialer.asterisk.testing import AgiExchange, AgiRecording, replay_agi_session
from ivr.channel import InputEnd, Prompt

AGI = Path(__file__).resolve().parents[1] / "fixtures" / "asterisk" / "agi"
SOUNDS = Path("/var/lib/followup-lab/sounds")


def prompt(name: str) -> Prompt:
    return Prompt(audio=SOUNDS / f"followup-{name}.wav", text=name, key=name)


def recording(name: str) -> AgiRecording:
    return AgiRecording.load(AGI / f"{name}.dialogue.txt")


Script = Callable[[AgiChannel, dict[str, Any]], Awaitable[None]]


async def run_case(name: str, script: Script, known: set[str] | None = None,
                   query: str = "followup?attempt=att-1") -> tuple[dict[str, Any], list[str],
                                                                   FastAgiServer[str]]:
    out: dict[str, Any] = {}
    known = {"att-1"} if known is None else known

    async def resolve(attempt_id: str) -> str | None:
        return attempt_id if attempt_id in known else None

    async def handler(attempt: str, request: AgiRequest, channel: AgiChannel) -> None:
        out["attempt"] = attempt
        out["request"] = request
        await script(channel, out)

    server: FastAgiServer[str] = FastAgiServer(
        resolve, handler, FakeClock(dt.datetime(2026, 3, 10, tzinfo=dt.UTC)),
        Path("/var/lib/followup-lab/recordings/agi"), port=0,
        goodbye=prompt("goodbye"))
    await server.start()
    try:
        sent = await asyncio.wait_for(
            replay_agi_session("127.0.0.1", server.port, recording(name), script=query), 10)
    finally:
        await server.close()
    return out, sent, server


async def test_answered_keypad_and_voice_answer() -> None:
    async def script(ch: AgiChannel, out: dict[str, Any]) -> None:
        out["answer"] = await ch.answer()
        out["hello"] = await ch.play(prompt("hello"))
        out["q1"] = await ch.collect_digits(prompt("press"), 1, 8.0)
        out["confirm"] = await ch.play(prompt("confirm"))
        out["q2"] = await ch.collect_digits(None, 1, 10.0)
        out["clip"] = await ch.record(prompt("record"), 15.0, 0.0)
        out["set"] = await ch.set_variable("FOLLOWUP_RESULT", "12")
        await ch.play(prompt("goodbye"))
        await ch.hangup()
        out["after"] = await ch.play(prompt("goodbye"))

    out, sent, server = await run_case("followup_dtmf_record", script)
    assert out["attempt"] == "att-1"
    assert out["answer"] is True
    assert out["hello"].digit is None and not out["hello"].hung_up
    assert (out["q1"].digits, out["q1"].end) == ("1", InputEnd.DIGITS)
    assert (out["q2"].digits, out["q2"].end) == ("2", InputEnd.DIGITS)
    clip = out["clip"]
    assert clip.end is InputEnd.INTERRUPTED and clip.digit == "#"
    assert clip.duration_ms == 5800  # endpos 46400 at 8 kHz
    assert clip.audio == Path(
        "/var/lib/followup-lab/recordings/agi/clip-1795652831.0-1.wav")
    assert out["set"] is True
    assert out["after"].hung_up is True
    assert sent == [
        "ANSWER",
        'STREAM FILE "/var/lib/followup-lab/sounds/followup-hello" ""',
        'GET DATA "/var/lib/followup-lab/sounds/followup-press" "8000" "1"',
        'STREAM FILE "/var/lib/followup-lab/sounds/followup-confirm" ""',
        'WAIT FOR DIGIT "10000"',
        'STREAM FILE "/var/lib/followup-lab/sounds/followup-record" ""',
        f'RECORD FILE "{str(clip.audio)[:-4]}" "wav" "#" "15000" "0"',
        'SET VARIABLE "FOLLOWUP_RESULT" "12"',
        'STREAM FILE "/var/lib/followup-lab/sounds/followup-goodbye" ""',
        "HANGUP",
    ]
    assert server.stats.completed == 1


async def test_no_input_times_out_everywhere() -> None:
    async def script(ch: AgiChannel, out: dict[str, Any]) -> None:
        await ch.answer()
        await ch.play(prompt("hello"))
        out["q1"] = await ch.collect_digits(prompt("press"), 1, 8.0)
        await ch.play(prompt("confirm"))
        out["q2"] = await ch.collect_digits(None, 1, 10.0)
        out["clip"] = await ch.record(prompt("record"), 15.0, 3.0)
        out["hung_up"] = ch.hung_up

    out, sent, _ = await run_case("followup_noinput_timeouts", script)
    assert (out["q1"].digits, out["q1"].end) == ("", InputEnd.TIMEOUT)
    assert (out["q2"].digits, out["q2"].end) == ("", InputEnd.TIMEOUT)
    assert out["clip"].end is InputEnd.TIMEOUT and out["clip"].duration_ms == 15000
    assert out["hung_up"] is False
    assert sent[-1].endswith('"15000" "0" "s=3"')


async def test_hangup_mid_prompt_stops_every_later_prompt() -> None:
    async def script(ch: AgiChannel, out: dict[str, Any]) -> None:
        await ch.answer()
        out["hello"] = await ch.play(prompt("hello"), "0")
        out["q1"] = await ch.collect_digits(prompt("press"), 1, 8.0)
        out["q2"] = await ch.collect_digits(None, 1, 10.0)
        out["clip"] = await ch.record(prompt("record"), 15.0, 3.0)
        out["transfer"] = await ch.transfer("followup-nurses", {"FOLLOWUP_SUMMARY": "x"})
        await ch.hangup()
        out["hung_up"] = ch.hung_up

    out, sent, server = await run_case("followup_hangup_midprompt", script)
    assert out["hello"].hung_up is True
    assert out["q1"].end is InputEnd.HANGUP and out["q2"].end is InputEnd.HANGUP
    assert out["clip"].end is InputEnd.HANGUP and out["clip"].audio is None
    assert out["transfer"] is False
    assert out["hung_up"] is True
    assert sent == ["ANSWER", 'STREAM FILE "/var/lib/followup-lab/sounds/followup-hello" "0"',
                    "CHANNEL STATUS"]  # -1 is confirmed: HANGUP line + 511
    assert server.stats.completed == 1


async def test_keypress_two_transfers_to_the_queue() -> None:
    async def script(ch: AgiChannel, out: dict[str, Any]) -> None:
        await ch.answer()
        await ch.play(prompt("hello"))
        out["q1"] = await ch.collect_digits(prompt("press"), 1, 8.0)
        out["transfer"] = await ch.transfer(
            "followup-agents", {"FOLLOWUP_SUMMARY": 'chest pain "severe"\nHANGUP'})
        out["after"] = await ch.play(prompt("goodbye"))

    out, sent, _ = await run_case("followup_nurse_to_queue", script)
    assert out["q1"].digits == "2"
    assert out["transfer"] is True
    assert sent[-2:] == ['SET VARIABLE "FOLLOWUP_SUMMARY" "chest pain \\"severe\\"HANGUP"',
                         'SET VARIABLE "FOLLOWUP_TRANSFER" "followup-agents"']
    # after the hand-off nothing more is sent: the AGI ends and the dialplan queues the call
    assert out["after"].digit is None


async def test_attempt_found_by_channel_variable_when_no_query() -> None:
    async def script(ch: AgiChannel, out: dict[str, Any]) -> None:
        await ch.hangup()

    # the recorded GET VARIABLE answers "task-1001"
    out, sent, _ = await run_case("followup_dtmf_record", script, known={"task-1001"},
                                  query="followup")
    assert out["attempt"] == "task-1001"
    assert sent[0] == 'GET VARIABLE "FOLLOWUP_ATTEMPT"'


async def test_unknown_attempt_ends_politely_and_is_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    async def script(ch: AgiChannel, out: dict[str, Any]) -> None:
        raise AssertionError("the handler must not run for an unknown attempt")

    with caplog.at_level(logging.WARNING):
        out, sent, server = await run_case("followup_dtmf_record", script,
                                           query="followup?attempt=nope")
    assert out == {}
    assert sent == ['STREAM FILE "/var/lib/followup-lab/sounds/followup-goodbye" ""', "HANGUP"]
    assert server.stats.unknown_attempt == 1
    assert "unknown attempt 'nope'" in caplog.text


async def test_a_crashing_handler_does_not_disturb_other_sessions(
        caplog: pytest.LogCaptureFixture) -> None:
    results: list[str] = []

    async def resolve(attempt_id: str) -> str | None:
        return attempt_id

    async def handler(attempt: str, request: AgiRequest, channel: AgiChannel) -> None:
        await channel.answer()
        if attempt == "bad":
            raise RuntimeError("boom")
        await channel.play(prompt("hello"))
        results.append(attempt)

    server: FastAgiServer[str] = FastAgiServer(
        resolve, handler, FakeClock(dt.datetime(2026, 3, 10, tzinfo=dt.UTC)),
        Path("/tmp"), port=0)
    await server.start()
    rec = recording("followup_dtmf_record")
    try:
        with caplog.at_level(logging.ERROR):
            await asyncio.gather(*(
                replay_agi_session("127.0.0.1", server.port, rec,
                                   script=f"followup?attempt={name}")
                for name in ("ok-1", "bad", "ok-2", "bad", "ok-3")))
    finally:
        await server.close()
    assert sorted(results) == ["ok-1", "ok-2", "ok-3"]
    assert server.stats.handler_errors == 2 and server.stats.completed == 3
    assert "handler failed for attempt bad" in caplog.text


async def test_a_session_past_its_deadline_is_ended(caplog: pytest.LogCaptureFixture) -> None:
    async def resolve(attempt_id: str) -> str | None:
        return attempt_id

    async def handler(attempt: str, request: AgiRequest, channel: AgiChannel) -> None:
        await channel.answer()
        await asyncio.Event().wait()  # a handler stuck forever

    server: FastAgiServer[str] = FastAgiServer(
        resolve, handler, FakeClock(dt.datetime(2026, 3, 10, tzinfo=dt.UTC)), Path("/tmp"),
        port=0, session_timeout_s=0.2)
    await server.start()
    try:
        with caplog.at_level(logging.ERROR):
            sent = await asyncio.wait_for(replay_agi_session(
                "127.0.0.1", server.port, recording("followup_dtmf_record"),
                script="followup?attempt=slow"), 5)
    finally:
        await server.close()
    assert sent == ["ANSWER"]
    assert server.stats.handler_errors == 1 and server.stats.active == 0
    assert "exceeded" in caplog.text


async def test_a_missing_prompt_on_a_live_call_is_not_a_hangup(
        caplog: pytest.LogCaptureFixture) -> None:
    """Seen on a real Asterisk 22.10.1 (smoke run against the rendered configs): a prompt
    file that does not exist gives `200 result=-1 endpos=0` (STREAM FILE) and
    `200 result=-1` (GET DATA) on a live call; CHANNEL STATUS then answers `200 result=6`."""
    env = recording("followup_dtmf_record").environment
    live = AgiRecording("missing_prompt", env, (
        AgiExchange('STREAM FILE "/x/missing" ""', ("200 result=-1 endpos=0",)),
        AgiExchange("CHANNEL STATUS", ("200 result=6",)),
        AgiExchange('GET DATA "/x/missing" "8000" "1"', ("200 result=-1",)),
        AgiExchange("CHANNEL STATUS", ("200 result=6",)),
        AgiExchange('GET DATA "/x/press" "8000" "1"', ("200 result=5",)),
    ))
    out: dict[str, Any] = {}

    async def resolve(attempt_id: str) -> str | None:
        return attempt_id

    async def handler(attempt: str, request: AgiRequest, channel: AgiChannel) -> None:
        missing = Prompt(Path("/x/missing.wav"), "missing", "q.missing")
        out["play"] = await channel.play(missing)
        out["q1"] = await channel.collect_digits(missing, 1, 8.0)
        out["q2"] = await channel.collect_digits(Prompt(Path("/x/press.wav"), "p"), 1, 8.0)
        out["hung_up"] = channel.hung_up

    server: FastAgiServer[str] = FastAgiServer(
        resolve, handler, FakeClock(dt.datetime(2026, 3, 10, tzinfo=dt.UTC)), Path("/tmp"),
        port=0)
    await server.start()
    try:
        with caplog.at_level(logging.ERROR):
            await asyncio.wait_for(replay_agi_session("127.0.0.1", server.port, live,
                                                      script="followup?attempt=a"), 5)
    finally:
        await server.close()
    assert out["play"].hung_up is False
    assert (out["q1"].digits, out["q1"].end) == ("", InputEnd.TIMEOUT)
    assert (out["q2"].digits, out["q2"].end) == ("5", InputEnd.DIGITS)
    assert out["hung_up"] is False
    assert "failed on a live call" in caplog.text


async def test_a_failing_lookup_ends_that_session_politely() -> None:
    async def resolve(attempt_id: str) -> str | None:
        raise RuntimeError("database away")

    async def handler(attempt: str, request: AgiRequest, channel: AgiChannel) -> None:
        raise AssertionError("not reached")

    server: FastAgiServer[str] = FastAgiServer(
        resolve, handler, FakeClock(dt.datetime(2026, 3, 10, tzinfo=dt.UTC)), Path("/tmp"),
        port=0, goodbye=prompt("goodbye"))
    await server.start()
    try:
        sent = await asyncio.wait_for(replay_agi_session(
            "127.0.0.1", server.port, recording("followup_dtmf_record"),
            script="followup?attempt=x"), 5)
    finally:
        await server.close()
    assert sent == ['STREAM FILE "/var/lib/followup-lab/sounds/followup-goodbye" ""', "HANGUP"]
    assert server.stats.unknown_attempt == 1


async def test_a_connection_that_is_not_agi_is_counted_and_dropped() -> None:
    """A port scanner or a misrouted client: no handler runs, the server keeps serving."""
    async def resolve(attempt_id: str) -> str | None:
        return attempt_id

    async def handler(attempt: str, request: AgiRequest, channel: AgiChannel) -> None:
        raise AssertionError("no handler for a session that never started")

    server: FastAgiServer[str] = FastAgiServer(
        resolve, handler, FakeClock(dt.datetime(2026, 3, 10, tzinfo=dt.UTC)), Path("/tmp"),
        port=0)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        writer.write_eof()
        await asyncio.wait_for(reader.read(), 5)  # the server hangs up
        writer.close()
        await writer.wait_closed()
    finally:
        await server.close()
    assert server.stats.sessions == 1 and server.stats.protocol_errors == 1
    assert server.stats.completed == 0 and server.stats.handler_errors == 0
