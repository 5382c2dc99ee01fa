"""The same interpreter through the web channel: each run replays what is stored, takes
the one answer the request carries, and stops at the next question."""

from __future__ import annotations

from pathlib import Path

from core.enums import AnswerSource, ScriptOutcome, Severity, TicketReason
from ivr.call_context import CallContext
from ivr.channel import Channel
from ivr.interpreter import ScriptInterpreter
from ivr.prompts import PromptContext
from ivr.results import Answer
from ivr.script_loader import load_scripts
from patient_web.questionnaire import WebAnswerSink
from patient_web.text_prompts import TextPrompts
from patient_web.web_channel import TypedWords, WebChannel, WebInput

REPO = Path(__file__).resolve().parents[3]
CARDIO = next(s for s in load_scripts(REPO / "scripts")
              if s.id == "cardiology-post-discharge" and s.locale == "zh-CN")
CONTEXT = CallContext(prompt=PromptContext(patient_name="王秀英", patient_title="女士",
                                           hospital="示范医院", department="心内科"),
                      birth_year=1958, staffed_hours=True)


async def _run(given: WebInput | None, earlier: tuple[Answer, ...] = ()
               ) -> tuple[WebChannel, WebAnswerSink, ScriptOutcome, list[TicketReason]]:
    words = TypedWords()
    channel = WebChannel(1958, given, words)
    assert isinstance(channel, Channel)
    sink = WebAnswerSink()
    interpreter = ScriptInterpreter(TextPrompts(), sink, words)
    context = CallContext(CONTEXT.prompt, 1958, True, earlier_answers=earlier)
    [result] = await interpreter.run_many([CARDIO], channel, context)
    return channel, sink, result.outcome, [t.reason for t in result.tickets]


async def test_the_first_run_stops_at_the_first_question_after_the_greeting() -> None:
    channel, sink, outcome, tickets = await _run(None)
    assert channel.asked is not None and channel.asked.question_id == "chest_pain"
    assert [s.part for s in channel.shown] == ["greeting"]
    assert "王秀英女士" in channel.shown[0].text
    assert outcome is ScriptOutcome.PARTIAL and sink.answers == {} and tickets == []


async def test_an_answer_is_taken_and_a_red_flag_is_a_ticket_with_the_safety_text() -> None:
    channel, sink, _, tickets = await _run(WebInput(CARDIO.id, "chest_pain", "1"))
    [answer] = sink.answers.values()
    assert (answer.source, answer.value, answer.red_flag) == (AnswerSource.WEB, "yes",
                                                              Severity.HIGH)
    # staffed hours, a `transfer` flag: the web cannot transfer, so ticket + safety message
    assert tickets == [TicketReason.RED_FLAG]
    assert [s.part for s in channel.shown] == ["q.chest_pain.red_flag.0"]
    assert channel.asked is not None and channel.asked.question_id == "breathless"


async def test_earlier_answers_are_skipped_and_typed_words_answer_a_spoken_question() -> None:
    earlier = tuple(Answer(CARDIO.id, 1, qid, CARDIO.question(qid).kind, AnswerSource.WEB, v)
                    for qid, v in (("chest_pain", "no"), ("breathless", "no"), ("sbp", "120"),
                                   ("meds", "yes")))
    channel, sink, outcome, _ = await _run(WebInput(CARDIO.id, "comment", words="都好"),
                                           earlier)
    [answer] = sink.answers.values()
    assert (answer.question_id, answer.source, answer.transcript, answer.audio,
            answer.needs_review) == ("comment", AnswerSource.WEB, "都好", None, False)
    assert answer.answered
    assert outcome is ScriptOutcome.COMPLETED and channel.asked is None
    assert [s.part for s in channel.shown] == ["closing"]


async def test_an_answer_for_another_question_is_not_taken() -> None:
    channel, sink, _, _ = await _run(WebInput(CARDIO.id, "meds", "1"))
    assert not channel.consumed and sink.answers == {}
    assert channel.asked is not None and channel.asked.question_id == "chest_pain"


async def test_an_invalid_key_is_asked_again_with_the_invalid_message() -> None:
    channel, sink, _, _ = await _run(WebInput(CARDIO.id, "chest_pain", "7"))
    assert sink.answers == {}
    assert [s.part for s in channel.shown] == ["msg.invalid"]
    assert channel.asked is not None and channel.asked.question_id == "chest_pain"
