"""The sim channel writes a real call recording: prompts, keys, the patient's own speech;
it can pace the call on a clock and log what the patient did."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from core.enums import AnswerSource, ScriptOutcome
from ivr.channel import InputEnd, Prompt
from ivr.interpreter import ScriptInterpreter
from ivr.prompt_maker import PromptMaker
from ivr.results import InMemoryAnswerSink
from ivr.script_model import Script
from ivr.sim_channel import (
    BEEP_MS,
    KEY_GAP_MS,
    KEY_MS,
    ScriptedPatient,
    SimChannel,
    SimEvent,
    SimEventKind,
    SimEventList,
    SimPatient,
    SimReply,
    SimTurn,
    TurnKind,
)
from ivr.speech import VoskRecognizer
from ivr.testing import Action, BargeIn, FakeTts, HangUp, Press, Silence, Speak, tone_pcm
from ivr.tts import EspeakTts, PromptAudio
from ivr.wav import read_wav, write_wav
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
    patient = ScriptedPatient([Press("1"), Press("1980#"), Press("2"), HangUp()], "zh-CN")
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


# -- pace and the log of what the patient did ---------------------------------------------

PROMPT_MS = 400
KEY = KEY_MS + KEY_GAP_MS


class PacedClock:
    """A fake clock whose `sleep` moves it and notes each wait (ms), as the campaign's would."""

    def __init__(self) -> None:
        self.now_ms = 0
        self.waits: list[int] = []

    async def sleep(self, seconds: float) -> None:
        ms = round(seconds * 1000)
        self.waits.append(ms)
        self.now_ms += ms


class ClockedEvents(SimEventList):
    """Notes the clock's time when each event is written."""

    def __init__(self, clock: PacedClock) -> None:
        super().__init__()
        self.clock = clock
        self.written_at: list[int] = []

    def write(self, call: str, attempt_id: int | None, event: SimEvent) -> None:
        self.written_at.append(self.clock.now_ms)
        super().write(call, attempt_id, event)


class OneReply:
    """A patient that gives the same reply to every input turn and listens to every prompt."""

    language = "en-US"

    def __init__(self, reply: SimReply, on_play: SimReply | None = None) -> None:
        self.reply = reply
        self.on_play = on_play or SimReply(think_ms=0)

    def respond(self, turn: SimTurn) -> SimReply:
        return self.on_play if turn.kind is TurnKind.PLAY else self.reply


@pytest.fixture
def prompt(tmp_path: Path) -> Prompt:
    audio = tmp_path / "prompt.wav"
    write_wav(audio, tone_pcm(PROMPT_MS))
    return Prompt(audio=audio, text="Pain? 1 yes 2 no.", key="s/q.pain")


def paced(patient: SimPatient, tmp_path: Path,
          attempt_id: int | None = 9) -> tuple[SimChannel, PacedClock, ClockedEvents]:
    clock = PacedClock()
    events = ClockedEvents(clock)
    channel = SimChannel(patient, tmp_path / "calls", voice=FakeTts(), call_name="call-9",
                         sleep=clock.sleep, truth=events, attempt_id=attempt_id)
    return channel, clock, events


async def test_keys_arrive_after_the_prompt_the_pause_and_each_tone(
        prompt: Prompt, tmp_path: Path) -> None:
    channel, clock, events = paced(ScriptedPatient([Press("12#")], think_ms=1500), tmp_path)
    got = await channel.collect_digits(prompt, 4, 5.0)
    assert (got.digits, got.end) == ("12", InputEnd.DIGITS)
    assert got.offset_ms == PROMPT_MS + 1500 + 3 * KEY  # the last tone's end, in the call
    assert clock.waits == [PROMPT_MS, 1500, KEY, KEY, KEY]
    assert clock.now_ms == channel.elapsed_waited_ms == channel.now_ms == PROMPT_MS + 1500 + 3 * KEY
    turn, delivered = events.events
    assert (turn.kind, turn.turn, turn.prompt_key, turn.offset_ms) == (
        SimEventKind.TURN, TurnKind.DIGITS, "s/q.pain", 0)
    assert (delivered.kind, delivered.keys, delivered.digits, delivered.end) == (
        SimEventKind.DELIVERED, "12#", "12", InputEnd.DIGITS)
    # written once the last tone had played, before the IVR had the keys
    assert events.written_at == [0, clock.now_ms] and delivered.offset_ms == clock.now_ms
    assert events.entries[1][:2] == ("call-9", 9)


async def test_a_timeout_waits_its_silence(prompt: Prompt, tmp_path: Path) -> None:
    channel, clock, events = paced(ScriptedPatient([Silence(), Press("1")]), tmp_path)
    got = await channel.collect_digits(prompt, 1, 5.0)
    assert got.end is InputEnd.TIMEOUT and clock.waits == [PROMPT_MS, 5000]
    assert events.events[-1].end is InputEnd.TIMEOUT


async def test_a_spoken_answer_waits_its_length_and_the_silence_after_it(
        prompt: Prompt, tmp_path: Path) -> None:
    channel, clock, events = paced(ScriptedPatient([Speak("much better")], think_ms=900),
                                   tmp_path)
    got = await channel.record(prompt, 10.0, 2.0)
    assert got.audio is not None
    assert clock.waits == [PROMPT_MS, BEEP_MS, 900, got.duration_ms, 2000]
    assert clock.now_ms == channel.now_ms
    delivered = events.events[-1]
    assert (delivered.said, delivered.clip, delivered.clip_offset_ms, delivered.clip_ms) == (
        "much better", got.audio, got.offset_ms, got.duration_ms)


async def test_a_barge_in_cuts_the_prompt_where_it_came(prompt: Prompt, tmp_path: Path) -> None:
    patient = OneReply(SimReply(), on_play=SimReply(keys="2", think_ms=0, prompt_heard=0.25))
    channel, clock, events = paced(patient, tmp_path)
    assert (await channel.play(prompt, "12")).digit == "2"
    assert clock.waits == [PROMPT_MS // 4, KEY]
    delivered = events.events[-1]
    assert (delivered.turn, delivered.digits, delivered.mid_prompt) == (TurnKind.PLAY, "2", True)


async def test_a_hangup_in_the_middle_of_the_question(prompt: Prompt, tmp_path: Path) -> None:
    channel, clock, events = paced(OneReply(SimReply(hang_up=True, prompt_heard=0.25)),
                                   tmp_path)
    got = await channel.collect_digits(prompt, 1, 5.0)
    assert got.end is InputEnd.HANGUP and channel.hung_up
    assert clock.waits == [PROMPT_MS // 4]  # no think time: it never got to answer
    hung = events.events[-1]
    assert (hung.kind, hung.prompt_key, hung.mid_prompt) == (
        SimEventKind.HUNG_UP, "s/q.pain", True)
    await channel.close()
    assert [e.kind for e in events.events] == [SimEventKind.TURN, SimEventKind.HUNG_UP]


async def test_a_hangup_at_the_input_after_a_pause(prompt: Prompt, tmp_path: Path) -> None:
    channel, clock, events = paced(
        OneReply(SimReply(hang_up=True, think_ms=800, prompt_heard=1.0)), tmp_path)
    assert (await channel.record(prompt, 5.0, 1.0)).end is InputEnd.HANGUP
    assert clock.waits == [PROMPT_MS, 800]
    assert not events.events[-1].mid_prompt and events.events[-1].turn is TurnKind.RECORD


async def test_our_hangup_and_close_end_the_line_once(prompt: Prompt, tmp_path: Path) -> None:
    channel, _, events = paced(ScriptedPatient([Press("1")]), tmp_path, attempt_id=None)
    await channel.collect_digits(prompt, 1, 5.0)
    await channel.hangup()
    await channel.close()
    assert [e.kind for e in events.events] == [
        SimEventKind.TURN, SimEventKind.DELIVERED, SimEventKind.ENDED]
    assert [e.seq for e in events.events] == [1, 2, 3]
    assert {attempt for _, attempt, _ in events.entries} == {None}


async def test_without_a_sleep_nothing_waits_and_the_timeline_is_the_same(
        prompt: Prompt, tmp_path: Path) -> None:
    def actions() -> list[Action]:
        return [BargeIn("1"), Press("2"), Silence(), Speak("fine"), HangUp()]

    timelines = []
    for sleep in (None, PacedClock().sleep):
        channel = SimChannel(ScriptedPatient(actions()), tmp_path / str(sleep is None),
                             voice=FakeTts(), sleep=sleep)
        await channel.play(prompt, "1")
        await channel.collect_digits(prompt, 1, 5.0)
        await channel.collect_digits(prompt, 1, 5.0)
        await channel.record(prompt, 5.0, 1.0)
        await channel.play(prompt)
        timelines.append((channel.now_ms, channel.elapsed_waited_ms,
                          read_wav(await channel.close())[0]))
    (unpaced_ms, unpaced_waited, unpaced_pcm), (paced_ms, paced_waited, paced_pcm) = timelines
    assert unpaced_waited == 0 and paced_waited == paced_ms == unpaced_ms
    assert unpaced_pcm == paced_pcm
