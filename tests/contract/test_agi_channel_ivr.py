"""A real question script through `run_script` over `AgiChannel`.

Hangup mid-prompt ends as `partial` with the answers given so far kept, both with the
protocol-exact emulator and over a real socket through the FastAGI server against the
recorded Asterisk session where the patient hung up during the first prompt.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from core.clock import FakeClock
from core.enums import ScriptOutcome
from dialer.asterisk.agi import AgiRequest
from dialer.asterisk.agi_channel import AgiChannel
from dialer.asterisk.agi_emulator import emulated_agi_channel
from dialer.asterisk.fastagi import FastAgiServer
from dialer.asterisk.testing import AgiRecording, replay_agi_session
from ivr.interpreter import ScriptInterpreter, run_script
from ivr.prompt_maker import PromptMaker
from ivr.results import InMemoryAnswerSink, ScriptResult
from ivr.script_loader import load_script
from ivr.script_model import Script
from ivr.testing import FakeTts, HangUp, Press, Speak
from ivr.tts import PromptAudio
from tests.unit.ivr.conftest import ALL_KINDS, call_context, write_script

AGI = Path(__file__).resolve().parents[1] / "fixtures" / "asterisk" / "agi"
START = [Press("1"), Press("1980#")]  # consent, identity


@pytest.fixture
def script(tmp_path: Path) -> Script:
    return load_script(write_script(tmp_path / "scripts", ALL_KINDS.format(locale="en-US")))


@pytest.fixture
def answers() -> InMemoryAnswerSink:
    return InMemoryAnswerSink()


@pytest.fixture
def interpreter(tmp_path: Path, answers: InMemoryAnswerSink) -> ScriptInterpreter:
    tts = FakeTts()
    audio = PromptAudio(cache_dir=tmp_path / "prompt-cache", engines={"en-US": tts})
    return ScriptInterpreter(PromptMaker(audio), answers, None, min_confidence=0.6)


async def test_hangup_mid_prompt_is_partial_with_answers_kept(
        script: Script, interpreter: ScriptInterpreter, answers: InMemoryAnswerSink,
        tmp_path: Path) -> None:
    channel, asterisk = emulated_agi_channel(
        [*START, Press("1"), Press("1"), HangUp()], tmp_path)
    result = await run_script(script, channel, call_context(staffed_hours=False),
                              interpreter)
    assert result.outcome is ScriptOutcome.PARTIAL
    assert result.resume_from == "sat"
    assert {a.question_id: a.value for a in answers.answers} == {"pain_yn": "yes", "mood": "good"}
    # nothing was sent after Asterisk reported the hangup
    assert channel.hung_up
    last = max(i for i, c in enumerate(asterisk.commands) if c.startswith("GET DATA"))
    assert not [c for c in asterisk.commands[last + 1:]
                if c.startswith(("STREAM FILE", "GET DATA", "WAIT FOR DIGIT", "RECORD FILE"))]


async def test_completed_script_over_agi(
        script: Script, interpreter: ScriptInterpreter, answers: InMemoryAnswerSink,
        tmp_path: Path) -> None:
    channel, asterisk = emulated_agi_channel(
        [*START, Press("2"), Press("1"), Press("4"), Press("130#"), Speak("all good")],
        tmp_path)
    result = await run_script(script, channel, call_context(staffed_hours=False),
                              interpreter)
    assert result.outcome is ScriptOutcome.COMPLETED, result
    answers = {a.question_id: a.value for a in answers.answers}
    assert answers["pain_yn"] == "no" and answers["sat"] == "4" and answers["sbp"] == "130"
    assert any(c.startswith("RECORD FILE") for c in asterisk.commands)


async def test_recorded_hangup_session_through_the_fastagi_server(
        script: Script, interpreter: ScriptInterpreter, answers: InMemoryAnswerSink,
        tmp_path: Path) -> None:
    results: dict[str, ScriptResult] = {}

    async def resolve(attempt_id: str) -> str | None:
        return attempt_id if attempt_id == "42" else None

    async def handler(attempt: str, request: AgiRequest, channel: AgiChannel) -> None:
        result = await run_script(script, channel, call_context(staffed_hours=False),
                                  interpreter)
        results[attempt] = result

    server: FastAgiServer[str] = FastAgiServer(
        resolve, handler, FakeClock(dt.datetime(2026, 3, 10, tzinfo=dt.UTC)), tmp_path, port=0)
    await server.start()
    try:
        rec = AgiRecording.load(AGI / "followup_hangup_midprompt.dialogue.txt")
        sent = await asyncio.wait_for(
            replay_agi_session("127.0.0.1", server.port, rec, script="followup?attempt=42"), 10)
    finally:
        await server.close()
    result = results["42"]
    assert result.outcome is ScriptOutcome.PARTIAL
    assert answers.answers == []
    # the greeting was the only prompt: the recorded STREAM FILE came back result=-1
    assert [verb for verb in sent if verb.startswith("STREAM FILE")][:1] == sent[:1]
    assert len([c for c in sent if c.startswith(("STREAM FILE", "GET DATA"))]) == 1
