"""Simulated patients answer at a person's pace and hang up at moments of their own."""

from __future__ import annotations

import datetime as dt
import itertools
import statistics
from pathlib import Path

import pytest

from core.clock import FakeClock
from dialer.sim.personas import (
    MAX_THINK_S,
    MIN_THINK_S,
    Behaviour,
    Persona,
    PersonaPatient,
    draw_persona,
)
from dialer.sim.truth_log import TruthLog, handled_replies, read_truth
from ivr.interpreter import ScriptInterpreter
from ivr.prompt_maker import PromptMaker
from ivr.results import InMemoryAnswerSink
from ivr.script_loader import load_script
from ivr.script_model import Script
from ivr.sim_channel import (
    SimChannel,
    SimEvent,
    SimEventKind,
    SimEventList,
    SimEventLog,
    SimTurn,
    Sleep,
    TurnKind,
)
from ivr.testing import FakeTts
from ivr.tts import PromptAudio
from tests.unit.ivr.conftest import ALL_KINDS, call_context, write_script

T0 = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)
HANGS_UP = {Behaviour.HANGS_UP: 1.0}
COOPERATIVE = {Behaviour.COOPERATIVE: 1.0}


@pytest.fixture
def script(tmp_path: Path) -> Script:
    return load_script(write_script(tmp_path / "scripts", ALL_KINDS.format(locale="en-US")))


@pytest.fixture
def prompts(tmp_path: Path) -> PromptMaker:
    return PromptMaker(PromptAudio(cache_dir=tmp_path / "prompts", engines={"en-US": FakeTts()}))


def persona(seed: int, rates: dict[Behaviour, float]) -> Persona:
    return draw_persona(seed, patient_id=11, attempt=1, birth_year=1980, language="en-US",
                        rates=rates)


async def run_call(persona: Persona, script: Script, prompts: PromptMaker, work_dir: Path,
                   sleep: Sleep | None = None, truth: SimEventLog | None = None,
                   attempt_id: int | None = None) -> tuple[SimChannel, InMemoryAnswerSink]:
    sink = InMemoryAnswerSink()
    channel = SimChannel(PersonaPatient(persona, {script.id: script}), work_dir,
                         voice=FakeTts(), call_name=f"call-{persona.seed}", sleep=sleep,
                         truth=truth, attempt_id=attempt_id)
    await ScriptInterpreter(prompts, sink).run(script, channel, call_context())
    await channel.close()
    return channel, sink


def test_a_persona_is_the_same_for_the_same_seed() -> None:
    assert persona(7, HANGS_UP) == persona(7, HANGS_UP)
    assert persona(7, HANGS_UP) != persona(8, HANGS_UP)


def test_each_answer_draws_its_own_think_time() -> None:
    p = persona(3, COOPERATIVE)
    patient = PersonaPatient(p, {})
    for _ in range(40):
        reply = patient.respond(SimTurn(TurnKind.DIGITS, "s/consent.prompt"))
        assert reply.keys == "1"
    times = patient.think_times_ms
    assert len(set(times)) > 30  # not one constant
    assert all(MIN_THINK_S * 1000 <= t <= MAX_THINK_S * 1000 for t in times)
    assert p.think_s / 2 <= statistics.median(times) / 1000 <= p.think_s * 2


def test_the_same_seed_replays_the_same_replies() -> None:
    turns = [SimTurn(TurnKind.PLAY, "s/greeting"),
             SimTurn(TurnKind.DIGITS, "s/identity.prompt"),
             SimTurn(TurnKind.DIGITS, "s/consent.prompt"),
             SimTurn(TurnKind.PLAY, "s/q.tip"),
             SimTurn(TurnKind.DIGITS, "s/q.x"),
             SimTurn(TurnKind.DIGITS, "s/q.y"),
             SimTurn(TurnKind.DIGITS, "s/q.z")]
    for seed in range(20):
        first, second = (PersonaPatient(persona(seed, HANGS_UP), {}) for _ in range(2))
        assert [first.respond(t) for t in turns] == [second.respond(t) for t in turns]


async def test_hang_ups_fall_mid_prompt_for_some_seeds_and_at_an_input_for_others(
        script: Script, prompts: PromptMaker, tmp_path: Path) -> None:
    hang_ups: list[SimEvent] = []
    for seed in range(24):
        p = persona(seed, HANGS_UP)
        events = SimEventList()
        channel, _ = await run_call(p, script, prompts, tmp_path / str(seed), truth=events)
        assert channel.hung_up
        [hung] = [e for e in events.events if e.kind is SimEventKind.HUNG_UP]
        answered = [e for e in events.events if e.kind is SimEventKind.DELIVERED]
        assert len(answered) >= p.hang_up_after  # patience: that many answers first
        hang_ups.append(hung)
    mid = [e for e in hang_ups if e.mid_prompt]
    assert mid and len(mid) < len(hang_ups)
    assert any(e.turn is TurnKind.DIGITS for e in mid)  # in the middle of a question
    assert all(e.turn is not TurnKind.PLAY for e in hang_ups if not e.mid_prompt)
    assert len({e.prompt_key for e in hang_ups}) > 1


async def test_a_call_replays_for_a_seed(script: Script, prompts: PromptMaker,
                                         tmp_path: Path) -> None:
    runs = []
    for n in range(2):
        events = SimEventList()
        channel, sink = await run_call(persona(5, HANGS_UP), script, prompts, tmp_path / str(n),
                                       truth=events)
        runs.append((events.events, [(a.question_id, a.value) for a in sink.answers],
                     channel.now_ms))
    assert runs[0] == runs[1]


async def test_answers_arrive_at_a_persons_pace_and_the_log_matches_the_store(
        script: Script, prompts: PromptMaker, tmp_path: Path) -> None:
    clock = FakeClock(T0)

    async def sleep(seconds: float) -> None:
        clock.advance(dt.timedelta(seconds=seconds))

    p = persona(1, COOPERATIVE)
    with TruthLog(tmp_path / "truth.jsonl", clock) as log:
        channel, sink = await run_call(p, script, prompts, tmp_path / "call", sleep=sleep,
                                       truth=log, attempt_id=42)
    waited = clock.now() - T0
    assert channel.elapsed_waited_ms == channel.now_ms
    assert waited == dt.timedelta(milliseconds=channel.now_ms)
    entries = read_truth(tmp_path / "truth.jsonl")
    answers = [e for e in entries if e.event is SimEventKind.DELIVERED and e.question]
    assert len(answers) >= 4
    for before, after in itertools.pairwise(answers):
        assert after.at is not None and before.at is not None
        assert after.at - before.at >= dt.timedelta(seconds=MIN_THINK_S)  # seconds apart
    assert all(e.attempt_id == 42 and e.call == channel.call_name for e in entries)
    # every reply the IVR was done with made a stored answer for its question
    stored = {a.question_id for a in sink.answers}
    assert {e.question[1] for e in handled_replies(entries) if e.question} <= stored
