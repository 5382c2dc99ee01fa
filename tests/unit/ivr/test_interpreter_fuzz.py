"""Whatever the patient presses, the interpreter ends cleanly and stores only valid answers,
and says nothing medical before identity is verified."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.enums import AnswerSource, QuestionKind, ScriptOutcome
from ivr.interpreter import ScriptInterpreter
from ivr.prompt_maker import PromptMaker
from ivr.results import InMemoryAnswerSink
from ivr.script_loader import load_script
from ivr.script_model import Script
from ivr.testing import Action, FakeTts, HangUp, Press, ScriptedChannel, Silence
from ivr.tts import PromptAudio
from tests.unit.ivr.conftest import ALL_KINDS, call_context, write_script

KEYS = st.text(alphabet="0123456789*#", min_size=1, max_size=5)
ACTIONS = st.lists(st.one_of(KEYS.map(Press), st.just(Silence()), st.just(HangUp()),
                             st.sampled_from([Press("1980#"), Press("1"), Press("2")])),
                   max_size=40)
# Half the calls get past identity and consent, so the questions are fuzzed too.
CALLS = st.tuples(st.booleans(), ACTIONS).map(
    lambda t: ([Press("1"), Press("1980#")] if t[0] else []) + t[1])


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Script, PromptMaker, Path]:
    root = tmp_path_factory.mktemp("fuzz")
    script = load_script(write_script(root, ALL_KINDS.format(locale="en-US")))
    maker = PromptMaker(PromptAudio(cache_dir=root / "cache", engines={"en-US": FakeTts()}))
    return script, maker, root


def valid(script: Script, question_id: str, value: str | None) -> bool:
    q = script.question(question_id)
    if value is None:
        return True
    if q.kind is QuestionKind.YES_NO:
        return value in ("yes", "no")
    if q.kind is QuestionKind.CHOICE:
        return value in {o.value for o in q.options}
    assert q.min is not None and q.max is not None
    return q.min <= int(value) <= q.max


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=CALLS, staffed=st.booleans(), accept=st.booleans())
def test_any_keys_end_cleanly_with_valid_answers(
        setup: tuple[Script, PromptMaker, Path], actions: list[Action], staffed: bool,
        accept: bool) -> None:
    script, maker, root = setup
    sink = InMemoryAnswerSink()
    channel = ScriptedChannel(actions, root, accept_transfer=accept)
    result = asyncio.run(ScriptInterpreter(maker, sink).run(
        script, channel, call_context(staffed_hours=staffed)))
    assert channel.hung_up or result.outcome is ScriptOutcome.TRANSFERRED
    assert result.answers == sink.answers
    for answer in sink.answers:
        assert valid(script, answer.question_id, answer.value)
        assert (answer.source is AnswerSource.NONE) == (answer.value is None
                                                        and answer.audio is None)
    verified_at = next((i for i, k in enumerate(channel.keys) if "/consent." in k
                        or "/q." in k), len(channel.keys))
    assert not any("bypass" in t for t in channel.texts[:verified_at])
    if not result.identity_verified:
        assert not sink.answers and not any("/q." in k for k in channel.keys)
    if result.outcome in (ScriptOutcome.COMPLETED, ScriptOutcome.ESCALATED):
        assert result.resume_from is None
