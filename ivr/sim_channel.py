"""The sim channel: a `Channel` whose far end is a simulated patient, with a real recording.

Simulated patients (the dialer's personas) implement `SimPatient.respond(turn)`: each time
the IVR plays or asks something, the patient sees the prompt (key and text) and replies
with keys, words to say, a think time, or a hangup. The channel keeps one call recording
(8 kHz mono 16-bit WAV) on a virtual timeline:

- every prompt's real rendered audio is written in (cut short by a barge-in or a hangup
  during it: `SimReply.prompt_heard`);
- think time is silence; keys are written as DTMF tones; a timeout is its silence;
- spoken answers are synthesised with espeak-ng in the patient's language, written into
  the recording *and* into an answer clip that goes through the real recogniser;
- `recording_path`, `answer_clips` (path, offset_ms, duration_ms) expose the result.

**Pace.** Without a `sleep` the channel never waits: a whole questionnaire takes no time
and `now_ms` says how long it would have lasted. Given a `sleep` (the campaign clock's,
possibly accelerated), every piece of the timeline is waited on as it happens (a prompt
its audio, or the part heard before a barge-in or hangup; the think time before the keys
or speech; each DTMF tone; the speech; a timeout its silence), so answers reach the IVR at
a person's pace. After each operation `elapsed_waited_ms == now_ms`.

**What the patient did.** Given a `truth` log (`SimEventLog`, e.g. the dialer's
`dialer.sim.truth_log.TruthLog`), the channel writes one `SimEvent` per thing that happened
on the patient's side, in order: `TURN` when the IVR starts a prompt or an input,
`DELIVERED` just before a reply (keys, speech, a barge-in, a timeout) is returned to the
IVR, `HUNG_UP` when the patient hangs up, `ENDED` when the line closes otherwise. Because
the IVR calls the channel one operation at a time, any event after a `DELIVERED` one shows
the IVR had finished handling that reply.

The recording is written when the call ends (either side hangs up, or `close()`).
`ScriptedPatient` turns the test actions of `ivr.testing` into a SimPatient, which lets
the channel contract tests drive this channel exactly like the scripted one.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
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

Sleep = Callable[[float], Awaitable[None]]


class TurnKind(enum.StrEnum):
    PLAY = "play"  # a prompt is playing; keys are a barge-in
    DIGITS = "digits"  # keys expected
    RECORD = "record"  # speech expected (a key stops the recording)


@dataclass(frozen=True, slots=True)
class SimTurn:
    """What the simulated patient hears and is asked for."""

    kind: TurnKind
    prompt_key: str
    max_digits: int = 0
    interrupt_digits: str = ""


@dataclass(frozen=True, slots=True)
class SimReply:
    """What the simulated patient does.

    `prompt_heard` is the fraction of the prompt played before a barge-in or a hangup; a
    hangup with `prompt_heard >= 1` comes after the whole prompt and `think_ms` of silence
    (the patient hangs up at the input instead of during the question).
    """

    keys: str = ""
    say: str | None = None  # words spoken, in the patient's language
    wav: Path | None = None  # or a ready clip to speak (8 kHz mono 16-bit)
    think_ms: int = 700
    hang_up: bool = False
    prompt_heard: float = 0.5


class SimPatient(Protocol):
    """A simulated patient: a persona decides replies from what it hears."""

    @property
    def language(self) -> str:
        """Locale of the patient's speech (zh-CN, en-US, ko-KR)."""
        ...

    def respond(self, turn: SimTurn) -> SimReply: ...


class SimEventKind(enum.StrEnum):
    TURN = "turn"  # the IVR started a prompt or an input (the patient hears prompt_key)
    DELIVERED = "delivered"  # a reply is being returned to the IVR (logged just before)
    HUNG_UP = "hung_up"  # the patient hung up
    ENDED = "ended"  # the line closed otherwise (our hangup, a transfer, close())


@dataclass(frozen=True, slots=True)
class SimEvent:
    """One thing that happened on the patient's side of a sim call.

    `keys` are the keys pressed as typed (terminator included); `digits` and `end` are what
    the IVR received (`digits` without the terminator, or the barge-in / stop key); `said`
    is the words spoken and `clip` the answer clip handed over, starting at `clip_offset_ms`
    for `clip_ms`. `offset_ms` is the time into the call (the virtual timeline) when it
    happened; `mid_prompt` marks a hangup or barge-in that cut the prompt short.
    """

    seq: int  # 1, 2, ... within the call
    kind: SimEventKind
    turn: TurnKind | None
    prompt_key: str
    offset_ms: int
    keys: str = ""
    digits: str = ""
    end: InputEnd | None = None
    said: str | None = None
    clip: Path | None = None
    clip_offset_ms: int | None = None
    clip_ms: int = 0
    mid_prompt: bool = False


class SimEventLog(Protocol):
    """Where a sim channel reports what its patient did (`dialer.sim.truth_log.TruthLog`)."""

    def write(self, call: str, attempt_id: int | None, event: SimEvent) -> None:
        """Record `event` of call `call` before the channel goes on."""
        ...


class SimEventList:
    """An in-memory `SimEventLog` (for tests): `entries` holds (call, attempt_id, event)."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, int | None, SimEvent]] = []

    def write(self, call: str, attempt_id: int | None, event: SimEvent) -> None:
        self.entries.append((call, attempt_id, event))

    @property
    def events(self) -> list[SimEvent]:
        return [event for _, _, event in self.entries]


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
    """A Channel to a SimPatient, writing a real call recording.

    `sleep` paces the call on a clock (see the module doc; None: no waiting at all);
    `truth` receives what the patient did, under `call_name` and `attempt_id`.
    """

    def __init__(self, patient: SimPatient, work_dir: Path, voice: TextToSpeech | None = None,
                 accept_transfer: bool = True, call_name: str = "call", *,
                 sleep: Sleep | None = None, truth: SimEventLog | None = None,
                 attempt_id: int | None = None) -> None:
        self.patient = patient
        self.work_dir = work_dir
        self.voice = voice or EspeakTts()
        self.accept_transfer = accept_transfer
        self.call_name = call_name
        self.attempt_id = attempt_id
        self.answer_clips: list[tuple[Path, int, int]] = []
        self.transfers: list[tuple[str, dict[str, str]]] = []
        self.prompts: list[Prompt] = []
        self._sleep = sleep
        self._truth = truth
        self._seq = 0
        self._waited_ms = 0
        self._pcm = bytearray()
        self._hung_up = False
        self._ended = False
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
        """Length of the call so far on the virtual timeline."""
        return len(self._pcm) // 2 * 1000 // RATE

    @property
    def elapsed_waited_ms(self) -> int:
        """How long the channel has waited on `sleep` (0 when not paced; `now_ms` once an
        operation has returned when paced)."""
        return self._waited_ms

    async def close(self) -> Path:
        """Write the recording (if not yet written) and return its path."""
        if not self._ended:
            self._ended = True
            self._log(SimEventKind.ENDED, None, "")
        if not self._written:
            self._written = True
            await asyncio.to_thread(write_wav, self.recording_path, bytes(self._pcm))
        return self.recording_path

    # -- timeline helpers ---------------------------------------------------------------

    async def _add(self, pcm: bytes) -> None:
        """Put `pcm` on the timeline and, when paced, wait for it to play out."""
        self._pcm += pcm
        await self._keep_pace()

    async def _keep_pace(self) -> None:
        if self._sleep is None:
            return
        ahead = self.now_ms - self._waited_ms
        if ahead > 0:
            await self._sleep(ahead / 1000.0)
            self._waited_ms += ahead

    async def _hear(self, prompt: Prompt | None, fraction: float = 1.0) -> None:
        if prompt is None:
            return
        self.prompts.append(prompt)
        pcm, rate = await asyncio.to_thread(read_wav, prompt.audio)
        if rate != RATE:
            raise ValueError(f"{prompt.audio}: prompts must be 8 kHz, not {rate} Hz")
        cut = int(len(pcm) * min(max(fraction, 0.0), 1.0)) // 2 * 2
        await self._add(pcm[:cut])

    async def _press(self, keys: str) -> None:
        for key in keys:
            if key in "0123456789*#":
                await self._add(dtmf(key, KEY_MS) + silence(KEY_GAP_MS))

    def _log(self, kind: SimEventKind, turn: TurnKind | None, prompt_key: str, *,
             keys: str = "", digits: str = "", end: InputEnd | None = None,
             said: str | None = None, clip: Path | None = None,
             clip_offset_ms: int | None = None, clip_ms: int = 0,
             mid_prompt: bool = False) -> None:
        if self._truth is None:
            return
        self._seq += 1
        self._truth.write(self.call_name, self.attempt_id, SimEvent(
            self._seq, kind, turn, prompt_key, self.now_ms, keys=keys, digits=digits, end=end,
            said=said, clip=clip, clip_offset_ms=clip_offset_ms, clip_ms=clip_ms,
            mid_prompt=mid_prompt))

    async def _end(self) -> None:
        self._hung_up = True
        await self.close()

    async def _patient_hangs_up(self, turn: TurnKind, prompt: Prompt | None,
                                reply: SimReply) -> None:
        """The patient hangs up during the prompt, or after it and a pause."""
        mid_prompt = prompt is not None and reply.prompt_heard < 1.0
        await self._hear(prompt, reply.prompt_heard)
        if not mid_prompt:
            await self._add(silence(reply.think_ms))
        self._ended = True
        self._log(SimEventKind.HUNG_UP, turn, prompt.key if prompt else "",
                  mid_prompt=mid_prompt)
        await self._end()

    def _turn(self, kind: TurnKind, prompt: Prompt | None, max_digits: int = 0,
              interrupt: str = "") -> SimReply:
        key = prompt.key if prompt else ""
        self._log(SimEventKind.TURN, kind, key)
        return self.patient.respond(SimTurn(kind, key, max_digits, interrupt))

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
            await self._patient_hangs_up(TurnKind.PLAY, prompt, reply)
            return PlayResult(None, hung_up=True)
        if reply.keys and reply.keys[0] in interrupt_digits:
            key = reply.keys[0]
            await self._hear(prompt, reply.prompt_heard)
            await self._press(key)
            self._log(SimEventKind.DELIVERED, TurnKind.PLAY, prompt.key, keys=key, digits=key,
                      end=InputEnd.INTERRUPTED, mid_prompt=reply.prompt_heard < 1.0)
            return PlayResult(key)
        await self._hear(prompt)
        return PlayResult(None)

    async def collect_digits(self, prompt: Prompt | None, max_digits: int, timeout_s: float,
                             terminator: str = "#") -> DigitsResult:
        if self._hung_up:
            return DigitsResult("", InputEnd.HANGUP)
        reply = self._turn(TurnKind.DIGITS, prompt, max_digits)
        if reply.hang_up:
            await self._patient_hangs_up(TurnKind.DIGITS, prompt, reply)
            return DigitsResult("", InputEnd.HANGUP)
        key = prompt.key if prompt else ""
        await self._hear(prompt)
        await self._add(silence(reply.think_ms))
        if reply.say or reply.wav:
            await self._add(await self._speech(reply))
        if not reply.keys:
            await self._add(silence(int(timeout_s * 1000)))
            self._log(SimEventKind.DELIVERED, TurnKind.DIGITS, key, end=InputEnd.TIMEOUT,
                      said=reply.say)
            return DigitsResult("", InputEnd.TIMEOUT)
        result = take_keys(reply.keys, max_digits, terminator)
        typed = result.digits + (terminator if result.end is InputEnd.DIGITS
                                 and len(result.digits) < max_digits else "")
        await self._press(typed)
        result = replace(result, offset_ms=self.now_ms)
        if result.end is InputEnd.TIMEOUT:
            await self._add(silence(int(timeout_s * 1000)))
        self._log(SimEventKind.DELIVERED, TurnKind.DIGITS, key, keys=typed,
                  digits=result.digits, end=result.end, said=reply.say)
        return result

    async def record(self, prompt: Prompt | None, max_seconds: float, silence_seconds: float,
                     stop_digits: str = "#") -> RecordResult:
        if self._hung_up:
            return RecordResult(None, 0, self.now_ms, InputEnd.HANGUP)
        reply = self._turn(TurnKind.RECORD, prompt)
        if reply.hang_up:
            await self._patient_hangs_up(TurnKind.RECORD, prompt, reply)
            return RecordResult(None, 0, self.now_ms, InputEnd.HANGUP)
        key = prompt.key if prompt else ""
        await self._hear(prompt)
        await self._add(tone_pcm(BEEP_MS, 1000.0))
        await self._add(silence(reply.think_ms))
        if reply.keys and reply.keys[0] in stop_digits and not (reply.say or reply.wav):
            stop = reply.keys[0]
            await self._press(stop)
            self._log(SimEventKind.DELIVERED, TurnKind.RECORD, key, keys=stop, digits=stop,
                      end=InputEnd.INTERRUPTED)
            return RecordResult(None, 0, self.now_ms, InputEnd.INTERRUPTED, stop)
        speech = (await self._speech(reply))[: int(max_seconds * RATE) * 2]
        if not speech:
            await self._add(silence(int(silence_seconds * 1000)))
            self._log(SimEventKind.DELIVERED, TurnKind.RECORD, key, end=InputEnd.TIMEOUT)
            return RecordResult(None, 0, self.now_ms, InputEnd.TIMEOUT)
        await self._add(bytes(-len(self._pcm) % (RATE // 1000 * 2)))  # clips start on a whole ms
        offset = self.now_ms
        await self._add(speech)
        clip = self.work_dir / f"{self.call_name}-answer-{len(self.answer_clips) + 1}.wav"
        await asyncio.to_thread(write_wav, clip, speech)
        clip_ms = duration_ms(speech)
        self.answer_clips.append((clip, offset, clip_ms))
        await self._add(silence(int(silence_seconds * 1000)))
        self._log(SimEventKind.DELIVERED, TurnKind.RECORD, key, end=InputEnd.TIMEOUT,
                  said=reply.say, clip=clip, clip_offset_ms=offset, clip_ms=clip_ms)
        return RecordResult(clip, clip_ms, offset, InputEnd.TIMEOUT)

    async def transfer(self, target: str, variables: dict[str, str]) -> bool:
        if self._hung_up:
            return False
        self.transfers.append((target, dict(variables)))
        await self._add(silence(TRANSFER_RING_MS))
        # the call goes on in the queue (a person, or the unanswered-handoff message): the
        # owner closes the recording when the call ends
        return self.accept_transfer

    async def wait_for_silence(self, silence_s: float, timeout_s: float) -> bool:
        """A simulated machine's greeting ends with its beep: the silence follows at once."""
        if self._hung_up:
            return False
        await self._add(silence(int(silence_s * 1000)))
        return True

    async def hangup(self) -> None:
        if not self._hung_up:
            await self._end()
