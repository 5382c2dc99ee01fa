"""Text to speech for prompts: engines, pre-recorded prompt packs, and a synthesis cache.

- `TextToSpeech`: one engine; `synthesize` is blocking and writes an 8 kHz mono 16-bit WAV.
- `EspeakTts`: espeak-ng (voices cmn / en-us / ko by default), run as a subprocess with an
  argv list (never a shell) and the text on stdin, piped into sox to resample its 22.05 kHz
  output to 8 kHz.
- `PiperTts`: optional neural voices (`piper-tts`, GPL-3.0, not a hard dependency): the
  import is guarded and `PiperTts.available()` says whether it can be used.
- `PromptPack`: a folder of pre-recorded WAVs `<root>/<script_id>/<locale>/<prompt key>.wav`
  that override synthesis prompt by prompt.
- `PromptAudio`: what the interpreter calls: pack first, then the cache keyed by
  (engine, voice, text), then synthesis in a worker thread (`asyncio.to_thread`), so each
  distinct prompt is synthesised once and the event loop never blocks.

Errors: a failing engine raises `TtsError` (a `FollowupError`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from core.errors import FollowupError
from ivr.wav import read_wav, write_wav

log = logging.getLogger(__name__)

ESPEAK_VOICES = {"zh-CN": "cmn", "en-US": "en-us", "ko-KR": "ko"}


class TtsError(FollowupError):
    """Speech synthesis failed (engine missing or crashed)."""

    code = "tts_failed"


class TextToSpeech(Protocol):
    """One synthesis engine."""

    name: str

    def default_voice(self, locale: str) -> str:
        """The engine's voice for `locale` when the settings name none."""
        ...

    def synthesize(self, text: str, voice: str, out: Path) -> None:
        """Write `text` spoken by `voice` to `out` as 8 kHz mono 16-bit WAV. Blocking.

        Raises TtsError."""
        ...


class EspeakTts:
    """espeak-ng + sox, both as argv-list subprocesses."""

    name = "espeak-ng"

    def __init__(self, espeak: str = "espeak-ng", sox: str = "sox", speed_wpm: int = 150,
                 timeout_s: float = 30.0) -> None:
        self.espeak = espeak
        self.sox = sox
        self.speed_wpm = speed_wpm
        self.timeout_s = timeout_s

    @staticmethod
    def available() -> bool:
        return shutil.which("espeak-ng") is not None and shutil.which("sox") is not None

    def default_voice(self, locale: str) -> str:
        return ESPEAK_VOICES.get(locale, locale.split("-")[0].lower())

    def synthesize(self, text: str, voice: str, out: Path) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.{threading.get_ident()}.tmp.wav")
        espeak_argv = [self.espeak, "-v", voice, "-s", str(self.speed_wpm), "--stdout"]
        sox_argv = [self.sox, "-q", "-t", "wav", "-", "-r", "8000", "-c", "1", "-b", "16",
                    "-e", "signed-integer", str(tmp)]
        try:
            with subprocess.Popen(espeak_argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE) as espeak, \
                    subprocess.Popen(sox_argv, stdin=espeak.stdout,
                                     stderr=subprocess.PIPE) as sox_proc:
                assert espeak.stdout is not None
                espeak.stdout.close()  # sox holds the read end; espeak sees EPIPE if it dies
                _, espeak_err = espeak.communicate(text.encode("utf-8"),
                                                   timeout=self.timeout_s)
                _, sox_err = sox_proc.communicate(timeout=self.timeout_s)
        except (OSError, subprocess.TimeoutExpired) as exc:
            tmp.unlink(missing_ok=True)
            raise TtsError(f"espeak-ng failed: {exc}") from exc
        if espeak.returncode != 0 or sox_proc.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise TtsError(f"espeak-ng/sox failed ({espeak.returncode}/{sox_proc.returncode}):"
                           f" {(espeak_err or b'').decode(errors='replace')[:200]}"
                           f" {(sox_err or b'').decode(errors='replace')[:200]}")
        os.replace(tmp, out)


class PiperTts:
    """Piper neural voices (optional extra `piper`); `voice` is a path to an .onnx model."""

    name = "piper"

    def __init__(self, voices: Mapping[str, str], sox: str = "sox") -> None:
        self.voices = dict(voices)
        self.sox = sox
        self._loaded: dict[str, object] = {}
        self._lock = threading.Lock()

    @staticmethod
    def available() -> bool:
        try:
            import piper  # noqa: F401
        except ImportError:
            return False
        return True

    def default_voice(self, locale: str) -> str:
        try:
            return self.voices[locale]
        except KeyError:
            raise TtsError(f"no piper voice configured for {locale}") from None

    def synthesize(self, text: str, voice: str, out: Path) -> None:
        import wave

        try:
            from piper import PiperVoice
        except ImportError as exc:
            raise TtsError("piper-tts is not installed (pip install followup-engine[piper])") \
                from exc
        with self._lock:
            model = self._loaded.get(voice)
            if model is None:
                model = PiperVoice.load(voice)
                self._loaded[voice] = model
        raw = out.with_name(f".{out.name}.{threading.get_ident()}.raw.wav")
        try:
            with wave.open(str(raw), "wb") as wav_file:
                model.synthesize(text, wav_file)  # type: ignore[attr-defined]
            subprocess.run([self.sox, "-q", str(raw), "-r", "8000", "-c", "1", "-b", "16",
                            "-e", "signed-integer", str(out)], check=True, capture_output=True,
                           timeout=60)
        except (OSError, subprocess.SubprocessError) as exc:
            raise TtsError(f"piper failed: {exc}") from exc
        finally:
            raw.unlink(missing_ok=True)


class PromptPack:
    """Pre-recorded prompts: `<root>/<script_id>/<locale>/<key>.wav` (8 kHz mono 16-bit)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def find(self, script_id: str, locale: str, key: str) -> Path | None:
        if not script_id or not key or "/" in key or key.startswith("."):
            return None
        path = self.root / script_id / locale / f"{key}.wav"
        return path if path.is_file() else None


@dataclass
class VoiceChoice:
    engine: TextToSpeech
    voice: str


@dataclass
class PromptAudio:
    """Prompt text -> WAV path: pack override, else the cache, else synthesis (once)."""

    cache_dir: Path
    engines: Mapping[str, TextToSpeech]  # locale -> engine (espeak-ng is the fallback)
    voices: Mapping[str, str] = field(default_factory=dict)  # locale -> voice
    pack: PromptPack | None = None
    fallback: TextToSpeech = field(default_factory=EspeakTts)
    synthesised: int = 0  # how many WAVs this object actually synthesised
    _locks: dict[Path, asyncio.Lock] = field(default_factory=dict, repr=False)

    def choice(self, locale: str) -> VoiceChoice:
        engine = self.engines.get(locale, self.fallback)
        voice = self.voices.get(locale) or engine.default_voice(locale)
        return VoiceChoice(engine, voice)

    def cache_path(self, text: str, locale: str) -> Path:
        choice = self.choice(locale)
        digest = hashlib.sha256(
            f"{choice.engine.name}\x00{choice.voice}\x00{text}".encode()).hexdigest()
        return self.cache_dir / choice.engine.name / digest[:2] / f"{digest}.wav"

    async def audio(self, text: str, locale: str, script_id: str = "", key: str = "") -> Path:
        """The WAV for `text`: may synthesise (in a worker thread). Raises TtsError."""
        if self.pack is not None:
            packed = self.pack.find(script_id, locale, key)
            if packed is not None:
                return packed
        path = self.cache_path(text, locale)
        if path.exists():
            return path
        lock = self._locks.setdefault(path, asyncio.Lock())
        async with lock:
            if not path.exists():
                choice = self.choice(locale)
                await asyncio.to_thread(choice.engine.synthesize, text, choice.voice, path)
                self.synthesised += 1
        self._locks.pop(path, None)
        return path

    def synthesise_blocking(self, text: str, locale: str) -> tuple[Path, bool]:
        """For the CLI pre-render: (path, whether it was synthesised now)."""
        path = self.cache_path(text, locale)
        if path.exists():
            return path, False
        choice = self.choice(locale)
        choice.engine.synthesize(text, choice.voice, path)
        self.synthesised += 1
        return path, True


def build_prompt_audio(data_dir: Path, engine_by_locale: Mapping[str, str],
                       voice_by_locale: Mapping[str, str], prompt_packs: str = "") -> PromptAudio:
    """Build from `settings.tts`: engine names are "espeak-ng" (default), "piper", or
    "tone" (a tone per prompt, for load tests and benchmarks of everything but speech).

    A locale set to piper while piper-tts is missing falls back to espeak-ng (logged)."""
    espeak = EspeakTts()
    engines: dict[str, TextToSpeech] = {}
    piper_voices = {loc: v for loc, v in voice_by_locale.items()
                    if engine_by_locale.get(loc) == "piper"}
    piper = PiperTts(piper_voices) if piper_voices and PiperTts.available() else None
    voices: dict[str, str] = {}
    for locale, name in engine_by_locale.items():
        if name == "tone":  # load tests: a tone per prompt, no synthesis cost
            from ivr.testing import FakeTts

            engines[locale] = FakeTts()
        elif name == "piper" and piper is not None:
            engines[locale] = piper
        else:
            if name == "piper":
                log.warning("tts: piper-tts not installed; %s uses espeak-ng", locale)
            engines[locale] = espeak
    for locale, voice in voice_by_locale.items():
        wanted = engine_by_locale.get(locale, "espeak-ng")
        chosen = engines[locale].name if locale in engines else "espeak-ng"
        if wanted == chosen:  # a piper model path means nothing to espeak-ng
            voices[locale] = voice
    pack = PromptPack(Path(prompt_packs)) if prompt_packs else None
    return PromptAudio(cache_dir=data_dir / "prompt-cache", engines=engines, voices=voices,
                       pack=pack, fallback=espeak)


def wav_seconds(path: Path) -> float:
    pcm, rate = read_wav(path)
    return len(pcm) / 2 / rate


__all__ = ["EspeakTts", "PiperTts", "PromptAudio", "PromptPack", "TextToSpeech", "TtsError",
           "build_prompt_audio", "wav_seconds", "write_wav"]
