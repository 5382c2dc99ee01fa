"""In-memory fakes for the IVR seams (they ship in the package: fakes over mocks).

- `ScriptedChannel`: a `Channel` driven by a list of patient actions (`Press`, `Silence`,
  `Speak`, `BargeIn`, `HangUp`) that records everything played and asked (`events`).
- `FakeTts`: a `TextToSpeech` that writes a short tone per prompt, instantly.
- `ScriptedRecognizer`: a `SpeechRecognizer` answering from a table (clip name -> result).

Action semantics (shared with `SimChannel` through `ScriptedPatient`, and the vocabulary of
the channel contract tests):
- `Press(keys)`: the next keypad input. `collect_digits` returns up to `max_digits` keys,
  stopping at the terminator (not included, end DIGITS); fewer keys and no terminator end
  with TIMEOUT after what was typed. `record` stops at the first key (`digit`), no audio.
- `Silence()`: the next input times out (`collect_digits` "" / `record` no audio).
- `Speak(text, wav)`: the next `record` gets this clip; `collect_digits` hears no keys.
- `BargeIn(key)`: consumed by the next `play` whose `interrupt_digits` holds `key`.
- `HangUp()`: the patient hangs up at the next channel call, whatever it is.
Running out of actions is a hangup at the next input (`ran_out` says so); prompts after the
last action still play.
"""

from __future__ import annotations

import math
import wave
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ivr.channel import DigitsResult, InputEnd, PlayResult, Prompt, RecordResult
from ivr.speech import NoModel, Recognition
from ivr.wav import RATE, read_wav, write_wav


@dataclass(frozen=True, slots=True)
class Press:
    keys: str


@dataclass(frozen=True, slots=True)
class Silence:
    pass


@dataclass(frozen=True, slots=True)
class Speak:
    text: str = ""
    wav: Path | None = None


@dataclass(frozen=True, slots=True)
class BargeIn:
    key: str


@dataclass(frozen=True, slots=True)
class HangUp:
    pass


Action = Press | Silence | Speak | BargeIn | HangUp


def take_keys(keys: str, max_digits: int, terminator: str) -> DigitsResult:
    """What `collect_digits` returns for keys typed in one go (shared by the fakes)."""
    out = ""
    for key in keys:
        if terminator and key == terminator:
            return DigitsResult(out, InputEnd.DIGITS)
        out += key
        if len(out) >= max_digits:
            return DigitsResult(out, InputEnd.DIGITS)
    return DigitsResult(out, InputEnd.TIMEOUT)


def tone_pcm(ms: int, freq: float = 440.0, rate: int = RATE) -> bytes:
    n = rate * ms // 1000
    return b"".join(int(3000 * math.sin(2 * math.pi * freq * i / rate)).to_bytes(2, "little",
                                                                                  signed=True)
                    for i in range(n))


def wav_ms(path: Path) -> int:
    with wave.open(str(path), "rb") as src:
        return src.getnframes() * 1000 // src.getframerate()


class ScriptedChannel:
    """A test `Channel`: the patient's actions come from a list; everything is recorded."""

    def __init__(self, actions: Iterable[Action], work_dir: Path,
                 accept_transfer: bool = True) -> None:
        self.actions: list[Action] = list(actions)
        self.work_dir = work_dir
        self.accept_transfer = accept_transfer
        self.events: list[tuple[str, str]] = []
        self.prompts: list[Prompt] = []
        self.transfers: list[tuple[str, dict[str, str]]] = []
        self.ran_out = False
        self.clock_ms = 0
        self._hung_up = False
        self._clips = 0

    @property
    def hung_up(self) -> bool:
        return self._hung_up

    @property
    def texts(self) -> list[str]:
        """The text of every prompt played or asked, in order."""
        return [p.text for p in self.prompts]

    @property
    def keys(self) -> list[str]:
        """The prompt keys (`<script>/<part>`) in order."""
        return [p.key for p in self.prompts]

    def _next(self, for_input: bool = True) -> Action | Silence | None:
        if self._hung_up:
            return None
        if not self.actions and not for_input:
            return Silence()  # listening to a prompt needs no action
        if not self.actions:
            self.ran_out = True
            self._hang_up("patient")
            return None
        action = self.actions[0]
        if isinstance(action, HangUp):
            self.actions.pop(0)
            self._hang_up("patient")
            return None
        return action

    def _hang_up(self, who: str) -> None:
        if not self._hung_up:
            self._hung_up = True
            self.events.append(("hangup", who))

    def _heard(self, prompt: Prompt | None, kind: str) -> None:
        if prompt is not None:
            self.prompts.append(prompt)
            self.events.append((kind, prompt.key))
            self.clock_ms += wav_ms(prompt.audio) if prompt.audio.exists() else 0

    async def play(self, prompt: Prompt, interrupt_digits: str = "") -> PlayResult:
        action = self._next(for_input=False)
        if action is None:
            return PlayResult(None, hung_up=True)
        self._heard(prompt, "play")
        if isinstance(action, BargeIn) and action.key in interrupt_digits:
            self.actions.pop(0)
            return PlayResult(action.key)
        return PlayResult(None)

    async def collect_digits(self, prompt: Prompt | None, max_digits: int, timeout_s: float,
                             terminator: str = "#") -> DigitsResult:
        action = self._next()
        if action is None:
            return DigitsResult("", InputEnd.HANGUP)
        self._heard(prompt, "ask")
        self.actions.pop(0)
        if isinstance(action, Press):
            return replace(take_keys(action.keys, max_digits, terminator),
                           offset_ms=self.clock_ms)
        self.clock_ms += int(timeout_s * 1000)
        return DigitsResult("", InputEnd.TIMEOUT)

    async def record(self, prompt: Prompt | None, max_seconds: float, silence_seconds: float,
                     stop_digits: str = "#") -> RecordResult:
        action = self._next()
        if action is None:
            return RecordResult(None, 0, self.clock_ms, InputEnd.HANGUP)
        self._heard(prompt, "record")
        self.actions.pop(0)
        if isinstance(action, Press) and action.keys and action.keys[0] in stop_digits:
            return RecordResult(None, 0, self.clock_ms, InputEnd.INTERRUPTED, action.keys[0])
        if isinstance(action, Speak):
            clip = action.wav
            if clip is None:
                self._clips += 1
                clip = self.work_dir / f"clip-{self._clips}.wav"
                write_wav(clip, tone_pcm(min(5000, 300 + 60 * len(action.text))))
            offset = self.clock_ms
            pcm, rate = read_wav(clip)
            duration = len(pcm) * 1000 // (2 * rate)
            self.clock_ms += duration + int(silence_seconds * 1000)
            self.events.append(("speak", clip.name))
            return RecordResult(clip, duration, offset, InputEnd.TIMEOUT)
        self.clock_ms += int(silence_seconds * 1000)
        return RecordResult(None, 0, self.clock_ms, InputEnd.TIMEOUT)

    async def transfer(self, target: str, variables: dict[str, str]) -> bool:
        if self._hung_up:
            return False
        self.transfers.append((target, dict(variables)))
        self.events.append(("transfer", target))
        return self.accept_transfer

    async def wait_for_silence(self, silence_s: float, timeout_s: float) -> bool:
        if self._hung_up:
            return False
        self.events.append(("wait_for_silence", f"{silence_s:g}"))
        return True

    async def hangup(self) -> None:
        self._hang_up("us")


class FakeTts:
    """A `TextToSpeech` that writes a tone whose length follows the text (no subprocess)."""

    name = "fake"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def default_voice(self, locale: str) -> str:
        return locale

    def synthesize(self, text: str, voice: str, out: Path) -> None:
        self.calls.append(text)
        write_wav(out, tone_pcm(min(2000, 50 + 5 * len(text))))


@dataclass
class ScriptedRecognizer:
    """A `SpeechRecognizer` that answers from a table keyed by clip file name."""

    results: Mapping[str, Recognition]
    locales: Sequence[str] = ("ko-KR",)
    vocabulary: frozenset[str] | None = None  # None: every word is known
    calls: list[tuple[str, tuple[str, ...] | None]] = field(default_factory=list)

    def has_model(self, locale: str) -> bool:
        return locale in self.locales

    def grammar_gaps(self, locale: str, words: Sequence[str]) -> list[str]:
        if self.vocabulary is None:
            return []
        return [w for w in words if w not in self.vocabulary]

    async def recognize(self, audio: Path, locale: str, grammar: Sequence[str] | None = None,
                        offset_ms: int = 0) -> Recognition:
        if not self.has_model(locale):
            raise NoModel(f"no speech model for {locale}")
        self.calls.append((audio.name, tuple(grammar) if grammar is not None else None))
        found = self.results.get(audio.name, Recognition("", 0.0))
        return Recognition(found.text, found.confidence, offset_ms, found.words)
