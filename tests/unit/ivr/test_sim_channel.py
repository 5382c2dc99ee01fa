"""The sim channel writes a real call recording: prompts, keys, the patient's own speech."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from core.enums import AnswerSource, ScriptOutcome
from ivr.interpreter import ScriptInterpreter
from ivr.prompt_maker import PromptMaker
from ivr.results import InMemoryAnswerSink
from ivr.script_model import Script
from ivr.sim_channel import ScriptedPatient, SimChannel, SimReply, SimTurn, TurnKind
from ivr.speech import VoskRecognizer
from ivr.testing import HangUp, Press
from ivr.tts import EspeakTts, PromptAudio
from ivr.wav import read_wav
from tests.unit.ivr.conftest import call_context

needs_espeak = pytest.mark.skipif(not EspeakTts.available(),
                                  reason="espeak-ng and sox are not installed")


@pytest.fixture
def espeak_prompts(tmp_path: Path) -> PromptMaker:
    return PromptMaker(PromptAudio(cache_dir=tmp_path / "cache", engines={}))


@needs_espeak
async def test_recording_holds_the_real_prompts_and_keys(
        script_factory: Callable[..., Script], espeak_prompts: PromptMaker,
        tmp_path: Path) -> None:
    sink = InMemoryAnswerSink()
    patient = ScriptedPatient([Press("1980#"), Press("1"), Press("2"), HangUp()], "zh-CN")
    channel = SimChannel(patient, tmp_path / "calls", accept_transfer=True)
    result = await ScriptInterpreter(espeak_prompts, sink).run(
        script_factory(locale="zh-CN"), channel, call_context())
    assert result.outcome is ScriptOutcome.PARTIAL and sink.answers[0].value == "no"
    recording, rate = read_wav(channel.recording_path)
    assert rate == 8000
    greeting, _ = read_wav(channel.prompts[0].audio)
    assert recording.startswith(greeting)  # the greeting's real audio opens the call
    total_prompts = sum(len(read_wav(p.audio)[0]) for p in channel.prompts[:-1])
    assert len(recording) > total_prompts  # plus think time and DTMF


class ThinkingPatient:
    """A tiny persona: presses keys for keypad questions and speaks Korean for voice."""

    language = "ko-KR"

    def __init__(self) -> None:
        self.turns: list[SimTurn] = []

    def respond(self, turn: SimTurn) -> SimReply:
        self.turns.append(turn)
        if turn.kind is TurnKind.PLAY:
            return SimReply(think_ms=0)
        if turn.prompt_key.endswith("identity.prompt"):
            return SimReply(keys="1980#")
        if turn.prompt_key.endswith("consent.prompt"):
            return SimReply(keys="1")
        if turn.prompt_key.endswith("q.pain_yn"):
            return SimReply(say="아니요", think_ms=900)
        return SimReply(hang_up=True)


@pytest.mark.slow
async def test_spoken_answer_goes_through_the_real_recognizer(
        script_factory: Callable[..., Script], vosk_ko: VoskRecognizer,
        espeak_prompts: PromptMaker, tmp_path: Path) -> None:
    sink = InMemoryAnswerSink()
    patient = ThinkingPatient()
    channel = SimChannel(patient, tmp_path / "calls")
    await ScriptInterpreter(espeak_prompts, sink, vosk_ko).run(
        script_factory(locale="ko-KR"), channel, call_context())
    answer = sink.answers[0]
    assert (answer.value, answer.source) == ("no", AnswerSource.VOICE)
    clip, offset, length = channel.answer_clips[0]
    assert answer.audio == clip and answer.offset_ms == offset
    recording, _ = read_wav(channel.recording_path)
    pcm, _ = read_wav(clip)
    start = offset * 8000 // 1000 * 2
    assert recording[start:start + len(pcm)] == pcm  # the clip is where the offset says
    assert length == len(pcm) // 16
    assert any(t.kind is TurnKind.RECORD for t in patient.turns)
