"""Every shipped script runs end to end: a cooperative patient completes it, and a patient
whose answers are all alarming gets tickets (outside staffed hours) for every red flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.enums import QuestionKind, ScriptOutcome, TicketReason
from ivr.interpreter import ScriptInterpreter
from ivr.prompt_maker import PromptMaker
from ivr.results import InMemoryAnswerSink
from ivr.script_loader import load_scripts
from ivr.script_model import Question, Script
from ivr.sim_channel import SimChannel, SimReply, SimTurn, TurnKind
from ivr.testing import FakeTts
from ivr.tts import PromptAudio
from tests.unit.ivr.conftest import call_context

REPO = Path(__file__).resolve().parents[3]
SCRIPTS = load_scripts(REPO / "scripts")


def calm_keys(q: Question) -> str:
    if q.kind is QuestionKind.YES_NO:
        return "2" if q.red_flags and q.red_flags[0].condition.source == "value" else "1"
    if q.kind is QuestionKind.CHOICE:
        return q.options[0].key
    if q.kind is QuestionKind.SCALE:
        return "3" if q.max == 5 else "2#"
    return "125#"


def alarming_keys(q: Question) -> str:
    if q.kind is QuestionKind.YES_NO:
        return "1" if q.red_flags and q.red_flags[0].condition.source == "value" else "2"
    if q.kind is QuestionKind.CHOICE:
        return q.options[-1].key
    if q.kind is QuestionKind.SCALE:
        return "1" if q.max == 5 else "9#"
    return "200#"


class Persona:
    def __init__(self, script: Script, alarming: bool) -> None:
        self.script = script
        self.alarming = alarming
        self.language = script.locale

    def respond(self, turn: SimTurn) -> SimReply:
        if turn.kind is TurnKind.PLAY:
            return SimReply(think_ms=0)
        part = turn.prompt_key.split("/", 1)[1]
        if part.startswith("identity."):
            return SimReply(keys="1980#")
        if part == "consent.prompt":
            return SimReply(keys="1")
        if part.startswith("q."):
            q = self.script.question(part[2:])
            if q.kind is QuestionKind.VOICE:
                return SimReply(say="fine")
            return SimReply(keys=(alarming_keys if self.alarming else calm_keys)(q))
        return SimReply(hang_up=True)


@pytest.fixture(scope="module")
def maker(tmp_path_factory: pytest.TempPathFactory) -> PromptMaker:
    tts = FakeTts()
    return PromptMaker(PromptAudio(cache_dir=tmp_path_factory.mktemp("cache"),
                                   engines={"zh-CN": tts, "en-US": tts, "ko-KR": tts}))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: f"{s.id}-v{s.version}-{s.locale}")
async def test_cooperative_patient_completes(script: Script, maker: PromptMaker,
                                             tmp_path: Path) -> None:
    sink = InMemoryAnswerSink()
    channel = SimChannel(Persona(script, alarming=False), tmp_path, voice=FakeTts())
    result = await ScriptInterpreter(maker, sink).run(script, channel, call_context())
    assert result.outcome is ScriptOutcome.COMPLETED, result
    assert not result.tickets
    asked = {q.id for q in script.questions if q.kind is not QuestionKind.MESSAGE}
    assert {a.question_id for a in sink.answers} <= asked
    assert all(a.value is not None or a.kind is QuestionKind.VOICE for a in sink.answers)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: f"{s.id}-v{s.version}-{s.locale}")
async def test_alarming_answers_raise_tickets_outside_hours(
        script: Script, maker: PromptMaker, tmp_path: Path) -> None:
    sink = InMemoryAnswerSink()
    channel = SimChannel(Persona(script, alarming=True), tmp_path, voice=FakeTts())
    result = await ScriptInterpreter(maker, sink).run(script, channel,
                                                      call_context(staffed_hours=False))
    flagged = [a for a in sink.answers if a.red_flag is not None]
    assert flagged, "every shipped script has at least one red flag"
    assert result.outcome is ScriptOutcome.ESCALATED
    assert {t.reason for t in result.tickets} == {TicketReason.RED_FLAG}
    assert len(result.tickets) >= len(flagged)
    assert not channel.transfers
