"""The behaviour every `ivr.Channel` must have, run against each implementation.

Each adapter is a factory `(actions, work_dir, accept_transfer) -> Channel` where the
actions (`ivr.testing`: Press, Silence, Speak, BargeIn, HangUp) describe what the far end
does, in order. To add an adapter (e.g. the FastAGI channel over a recorded or fake
Asterisk dialogue), write such a factory and add it to `ADAPTERS`; a service that may be
absent must `pytest.skip("reason")` inside the factory.
"""

from __future__ import annotations

import wave
from collections.abc import Callable
from pathlib import Path

import pytest

from ivr.channel import Channel, InputEnd, Prompt
from ivr.sim_channel import ScriptedPatient, SimChannel
from ivr.testing import (
    Action,
    BargeIn,
    FakeTts,
    HangUp,
    Press,
    ScriptedChannel,
    Silence,
    Speak,
    tone_pcm,
)
from ivr.wav import write_wav

Factory = Callable[[list[Action], Path, bool], Channel]


def scripted(actions: list[Action], work_dir: Path, accept_transfer: bool) -> Channel:
    return ScriptedChannel(actions, work_dir, accept_transfer=accept_transfer)


def sim(actions: list[Action], work_dir: Path, accept_transfer: bool) -> Channel:
    return SimChannel(ScriptedPatient(actions, "en-US"), work_dir, voice=FakeTts(),
                      accept_transfer=accept_transfer)


ADAPTERS: dict[str, Factory] = {"scripted": scripted, "sim": sim}


@pytest.fixture(params=sorted(ADAPTERS))
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Channel]:
    factory = ADAPTERS[request.param]

    def build(*actions: Action, accept_transfer: bool = True) -> Channel:
        channel = factory(list(actions), tmp_path, accept_transfer)
        assert isinstance(channel, Channel)
        return channel
    return build


@pytest.fixture
def prompt(tmp_path: Path) -> Prompt:
    audio = tmp_path / "prompt.wav"
    write_wav(audio, tone_pcm(400))
    return Prompt(audio=audio, text="Press 1 for yes.", key="t/q.a")


async def test_play_plays_to_the_end(make: Callable[..., Channel], prompt: Prompt) -> None:
    channel = make(Press("1"))
    result = await channel.play(prompt)
    assert result.digit is None and not result.hung_up and not channel.hung_up


async def test_play_with_barge_in(make: Callable[..., Channel], prompt: Prompt) -> None:
    channel = make(BargeIn("2"), Press("5"))
    assert (await channel.play(prompt, "12")).digit == "2"
    got = await channel.collect_digits(None, 1, 3.0)
    assert got.digits == "5"


@pytest.mark.parametrize(("keys", "max_digits", "expected", "end"), [
    ("123#", 5, "123", InputEnd.DIGITS),  # terminator ends input, not included
    ("12345", 3, "123", InputEnd.DIGITS),  # max digits
    ("#", 4, "", InputEnd.DIGITS),
    ("12", 4, "12", InputEnd.TIMEOUT),  # no terminator: what was typed, after the timeout
])
async def test_collect_digits(make: Callable[..., Channel], prompt: Prompt, keys: str,
                              max_digits: int, expected: str, end: InputEnd) -> None:
    channel = make(Press(keys))
    got = await channel.collect_digits(prompt, max_digits, 5.0, "#")
    assert (got.digits, got.end) == (expected, end)


async def test_collect_digits_timeout(make: Callable[..., Channel], prompt: Prompt) -> None:
    channel = make(Silence())
    got = await channel.collect_digits(prompt, 1, 5.0)
    assert (got.digits, got.end) == ("", InputEnd.TIMEOUT)
    assert not channel.hung_up


async def test_record_returns_an_8khz_clip_with_its_offset(
        make: Callable[..., Channel], prompt: Prompt) -> None:
    channel = make(Speak("I am feeling better"), Speak("thank you"))
    first = await channel.record(prompt, 10.0, 2.0)
    second = await channel.record(prompt, 10.0, 2.0)
    for clip in (first, second):
        assert clip.audio is not None and clip.duration_ms > 0
        with wave.open(str(clip.audio)) as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
    assert first.audio != second.audio
    assert 0 <= first.offset_ms < second.offset_ms
    assert second.offset_ms >= first.offset_ms + first.duration_ms


async def test_keys_say_when_in_the_call_they_ended(
        make: Callable[..., Channel], prompt: Prompt) -> None:
    channel = make(Speak("I am feeling better"), Press("1"), Silence())
    clip = await channel.record(prompt, 10.0, 2.0)
    keys = await channel.collect_digits(prompt, 1, 5.0)
    assert keys.digits == "1" and keys.offset_ms is not None
    assert keys.offset_ms >= clip.offset_ms + clip.duration_ms  # after the clip and prompt
    nothing = await channel.collect_digits(prompt, 1, 5.0)
    assert (nothing.digits, nothing.offset_ms) == ("", None)  # a timeout sits nowhere


async def test_record_stopped_by_a_key(make: Callable[..., Channel], prompt: Prompt) -> None:
    channel = make(Press("#"))
    got = await channel.record(prompt, 10.0, 2.0, "#*")
    assert got.audio is None and got.digit == "#"


async def test_record_silence(make: Callable[..., Channel], prompt: Prompt) -> None:
    channel = make(Silence())
    got = await channel.record(prompt, 10.0, 2.0)
    assert got.audio is None and got.duration_ms == 0 and not channel.hung_up


async def test_far_end_hangup_then_everything_is_empty(
        make: Callable[..., Channel], prompt: Prompt) -> None:
    channel = make(Press("1"), HangUp())
    assert (await channel.collect_digits(prompt, 1, 5.0)).digits == "1"
    got = await channel.collect_digits(prompt, 1, 5.0)
    assert channel.hung_up and (got.digits, got.end) == ("", InputEnd.HANGUP)
    assert (await channel.play(prompt, "1")).hung_up
    rec = await channel.record(prompt, 5.0, 1.0)
    assert rec.audio is None and rec.end is InputEnd.HANGUP
    assert await channel.transfer("followup-agents", {}) is False
    await channel.hangup()  # harmless
    assert channel.hung_up


async def test_hangup_during_a_prompt(make: Callable[..., Channel], prompt: Prompt) -> None:
    channel = make(HangUp())
    assert (await channel.play(prompt)).hung_up and channel.hung_up


async def test_our_hangup(make: Callable[..., Channel], prompt: Prompt) -> None:
    channel = make(Press("1"), Press("2"))
    await channel.hangup()
    assert channel.hung_up
    assert (await channel.collect_digits(prompt, 1, 5.0)).digits == ""


@pytest.mark.parametrize("accept", [True, False])
async def test_transfer(make: Callable[..., Channel], accept: bool) -> None:
    channel = make(Silence(), accept_transfer=accept)
    assert await channel.transfer("followup-nurses", {"FOLLOWUP_ATTEMPT": "7"}) is accept


async def test_wait_for_silence_then_a_message(make: Callable[..., Channel],
                                               prompt: Prompt) -> None:
    """An answering machine's greeting ends: the message plays after it; a line already
    gone waits for nothing."""
    channel = make(Silence())
    assert await channel.wait_for_silence(1.5, 30.0) is True
    assert not (await channel.play(prompt)).hung_up
    await channel.hangup()
    assert await channel.wait_for_silence(1.5, 30.0) is False
