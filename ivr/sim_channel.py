"""The sim channel: a `Channel` whose far end is a simulated patient, with a real recording.

Simulated patients (the dialer's personas) implement `SimPatient.respond(turn)`: each time
the IVR plays or asks something, the patient sees the prompt (key and text) and replies
with keys, words to say, a think time, or a hangup. The channel keeps one call recording
(8 kHz mono 16-bit WAV) on a virtual timeline, no real waiting:

- every prompt's real rendered audio is written in (cut in half by a barge-in);
- think time is silence; keys are written as DTMF tones; a timeout is its silence;
- spoken answers are synthesised with espeak-ng in the patient's language, written into
  the recording *and* into an answer clip that goes through the real recogniser;
- `recording_path`, `answer_clips` (path, offset_ms, duration_ms) expose the result.

The recording is written when the call ends (either side hangs up, or `close()`).
`ScriptedPatient` turns the test actions of `ivr.testing` into a SimPatient, which lets
the channel contract tests drive this channel exactly like the scripted one.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ivr.channel import DigitsResult, InputEnd, PlayResult, Prompt, RecordResult
from ivr.testing import Action, BargeIn, HangUp, Press, Silence, Speak, take_keys, tone_pcm
from ivr.tts import EspeakTts, TextToSpeech
from ivr.wav import RATE, dtmf, duration_ms, read_wav, silence, write_wav

KEY_MS = 100
KEY_GAP_MS = 80
BEEP_MS = 200
TRANSFER_RING_MS = 2000


class TurnKind(enum.StrEnum):
    PLAY = "play"  # a prompt is playing; keys are a barge-in
    DIGITS = "digits"  # keys expected
    RECORD = "record"  # speech expected (a key stops the recording)


@dataclass(frozen=True, slots=True)
class SimTurn:
    """What the simulated patient hears and is asked for."""

    kind: TurnKind
    prompt_key: str
    prompt_text: str
    max_digits: int = 0
    interrupt_digits: str = ""


@dataclass(frozen=True, slots=True)
class SimReply:
    """What the simulated patient does."""

    keys: str = ""
    say: str | None = None  # words spoken, in the patient's language
    wav: Path | None = None  # or a ready clip to speak (8 kHz mono 16-bit)
    think_ms: int = 700
    hang_up: bool = False


class SimPatient(Protocol):
    """A simulated patient: a persona decides replies from what it hears."""

    @property
    def language(self) -> str:
        """Locale of the patient's speech (zh-CN, en-US, ko-KR)."""
        ...

    def respond(self, turn: SimTurn) -> SimReply: ...


class ScriptedPatient:
    """A SimPatient that follows a list of `ivr.testing` actions (same rules as
    `ScriptedChannel`: running out of actions is a hangup at the next input)."""

    def __init__(self, actions: Iterable[Action], language: str = "en-US",
                 think_ms: int = 500) -> None:
        self.actions = list(actions)
        self._language = language
        self.think_ms = think_ms

    @property
    def language(self) -> str:
        return self._language

    def respond(self, turn: SimTurn) -> SimReply:
        nxt = self.actions[0] if self.actions else None
        if turn.kind is TurnKind.PLAY:
            if isinstance(nxt, HangUp):
                self.actions.pop(0)
                return SimReply(hang_up=True, think_ms=0)
            if isinstance(nxt, BargeIn) and nxt.key in turn.interrupt_digits:
                self.actions.pop(0)
                return SimReply(keys=nxt.key, think_ms=0)
            return SimReply(think_ms=0)
        if nxt is None or isinstance(nxt, HangUp):
            if nxt is not None:
                self.actions.pop(0)
            return SimReply(hang_up=True, think_ms=0)
        self.actions.pop(0)
        if isinstance(nxt, Press):
            return SimReply(keys=nxt.keys, think_ms=self.think_ms)
        if isinstance(nxt, Speak):
            return SimReply(say=nxt.text or None, wav=nxt.wav, think_ms=self.think_ms)
        if isinstance(nxt, Silence | BargeIn):
            return SimReply(think_ms=0)
        return SimReply(think_ms=0)


class SimChannel:
    """A Channel to a SimPatient, writing a real call recording."""

    def __init__(self, patient: SimPatient, work_dir: Path, voice: TextToSpeech | None = None,
                 accept_transfer: bool = True, call_name: str = "call") -> None:
        self.patient = patient
        self.work_dir = work_dir
        self.voice = voice or EspeakTts()
        self.accept_transfer = accept_transfer
        self.call_name = call_name
        self.answer_clips: list[tuple[Path, int, int]] = []
        self.transfers: list[tuple[str, dict[str, str]]] = []
        self.prompts: list[Prompt] = []
        self._pcm = bytearray()
        self._hung_up = False
        self._written = False

    # -- what the simulation reads back -----------------------------------------------

    @property
    def hung_up(self) -> bool:
        return self._hung_up

    @property
    def recording_path(self) -> Path:
        return self.work_dir / f"{self.call_name}.wav"

    @property
    def now_ms(self) -> int:
        return len(self._pcm) // 2 * 1000 // RATE

    async def close(self) -> Path:
        """Write the recording (if not yet written) and return its path."""
        if not self._written:
            self._written = True
            await asyncio.to_thread(write_wav, self.recording_path, bytes(self._pcm))
        return self.recording_path

    # -- timeline helpers ---------------------------------------------------------------

    async def _append_prompt(self, prompt: Prompt | None, fraction: float = 1.0) -> None:
        if prompt is None:
            return
        self.prompts.append(prompt)
        pcm, rate = await asyncio.to_thread(read_wav, prompt.audio)
        if rate != RATE:
            raise ValueError(f"{prompt.audio}: prompts must be 8 kHz, not {rate} Hz")
        cut = int(len(pcm) * fraction) // 2 * 2
        self._pcm += pcm[:cut]

    def _append_keys(self, keys: str) -> None:
        for key in keys:
            if key in "0123456789*#":
                self._pcm += dtmf(key, KEY_MS) + silence(KEY_GAP_MS)

    async def _end(self) -> None:
        self._hung_up = True
        await self.close()

    def _turn(self, kind: TurnKind, prompt: Prompt | None, max_digits: int = 0,
              interrupt: str = "") -> SimReply:
        return self.patient.respond(SimTurn(kind, prompt.key if prompt else "",
                                            prompt.text if prompt else "", max_digits,
                                            interrupt))

    async def _speech(self, reply: SimReply) -> bytes:
        if reply.wav is not None:
            pcm, _ = await asyncio.to_thread(read_wav, reply.wav)
            return pcm
        if not reply.say:
            return b""
        # unique per call: concurrent calls may say the same words
        clip = self.work_dir / f".say-{self.call_name}-{len(self.answer_clips)}.wav"
        voice = self.voice.default_voice(self.patient.language)
        await asyncio.to_thread(self.voice.synthesize, reply.say, voice, clip)
        pcm, _ = await asyncio.to_thread(read_wav, clip)
        clip.unlink(missing_ok=True)
        return pcm

    # -- the Channel protocol -------------------------------------------------------------

    async def play(self, prompt: Prompt, interrupt_digits: str = "") -> PlayResult:
        if self._hung_up:
            return PlayResult(None, hung_up=True)
        reply = self._turn(TurnKind.PLAY, prompt, 0, interrupt_digits)
        if reply.hang_up:
            await self._append_prompt(prompt, 0.5)
            await self._end()
            return PlayResult(None, hung_up=True)
        if reply.keys and reply.keys[0] in interrupt_digits:
            await self._append_prompt(prompt, 0.5)
            self._append_keys(reply.keys[0])
            return PlayResult(reply.keys[0])
        await self._append_prompt(prompt)
        return PlayResult(None)

    async def collect_digits(self, prompt: Prompt | None, max_digits: int, timeout_s: float,
                             terminator: str = "#") -> DigitsResult:
        if self._hung_up:
            return DigitsResult("", InputEnd.HANGUP)
        reply = self._turn(TurnKind.DIGITS, prompt, max_digits)
        await self._append_prompt(prompt, 0.5 if reply.hang_up else 1.0)
        if reply.hang_up:
            await self._end()
            return DigitsResult("", InputEnd.HANGUP)
        self._pcm += silence(reply.think_ms)
        if reply.say or reply.wav:
            self._pcm += await self._speech(reply)
        if not reply.keys:
            self._pcm += silence(int(timeout_s * 1000))
            return DigitsResult("", InputEnd.TIMEOUT)
        result = take_keys(reply.keys, max_digits, terminator)
        typed = result.digits + (terminator if result.end is InputEnd.DIGITS
                                 and len(result.digits) < max_digits else "")
        self._append_keys(typed)
        if result.end is InputEnd.TIMEOUT:
            self._pcm += silence(int(timeout_s * 1000))
        return result

    async def record(self, prompt: Prompt | None, max_seconds: float, silence_seconds: float,
                     stop_digits: str = "#") -> RecordResult:
        if self._hung_up:
            return RecordResult(None, 0, self.now_ms, InputEnd.HANGUP)
        reply = self._turn(TurnKind.RECORD, prompt)
        await self._append_prompt(prompt, 0.5 if reply.hang_up else 1.0)
        if reply.hang_up:
            await self._end()
            return RecordResult(None, 0, self.now_ms, InputEnd.HANGUP)
        self._pcm += tone_pcm(BEEP_MS, 1000.0)
        self._pcm += silence(reply.think_ms)
        if reply.keys and reply.keys[0] in stop_digits and not (reply.say or reply.wav):
            self._append_keys(reply.keys[0])
            return RecordResult(None, 0, self.now_ms, InputEnd.INTERRUPTED, reply.keys[0])
        speech = (await self._speech(reply))[: int(max_seconds * RATE) * 2]
        if not speech:
            self._pcm += silence(int(silence_seconds * 1000))
            return RecordResult(None, 0, self.now_ms, InputEnd.TIMEOUT)
        self._pcm += bytes(-len(self._pcm) % (RATE // 1000 * 2))  # clips start on a whole ms
        offset = self.now_ms
        self._pcm += speech
        clip = self.work_dir / f"{self.call_name}-answer-{len(self.answer_clips) + 1}.wav"
        await asyncio.to_thread(write_wav, clip, speech)
        clip_ms = duration_ms(speech)
        self.answer_clips.append((clip, offset, clip_ms))
        self._pcm += silence(int(silence_seconds * 1000))
        return RecordResult(clip, clip_ms, offset, InputEnd.TIMEOUT)

    async def transfer(self, target: str, variables: dict[str, str]) -> bool:
        if self._hung_up:
            return False
        self.transfers.append((target, dict(variables)))
        self._pcm += silence(TRANSFER_RING_MS)
        if self.accept_transfer:
            await self.close()
        return self.accept_transfer

    async def hangup(self) -> None:
        if not self._hung_up:
            await self._end()
