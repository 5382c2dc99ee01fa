"""Interpreter behaviour over the scripted test channel (no telephony, fake TTS)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from core.enums import AnswerSource, ScriptOutcome, Severity, TicketReason
from ivr.interpreter import ScriptInterpreter
from ivr.results import InMemoryAnswerSink
from ivr.script_loader import load_script
from ivr.script_model import Script
from ivr.speech import Recognition
from ivr.testing import HangUp, Press, ScriptedChannel, ScriptedRecognizer, Silence, Speak
from tests.unit.ivr.conftest import call_context, write_script

Make = Callable[..., Script]
MakeInterp = Callable[..., ScriptInterpreter]

START = [Press("1"), Press("1980#")]  # consent, identity


def by_id(sink: InMemoryAnswerSink) -> dict[str, object]:
    return {a.question_id: a.value for a in sink.answers}


async def test_every_kind_completes_and_branches_past_a_false_when(
        script_factory: Make, interpreter_factory: MakeInterp, sink: InMemoryAnswerSink,
        tmp_path: Path) -> None:
    channel = ScriptedChannel([*START, Press("2"), Press("1"), Press("4"), Press("120#"),
                               Speak("all fine")], tmp_path)
    result = await interpreter_factory().run(script_factory(), channel, call_context())
    assert result.outcome is ScriptOutcome.COMPLETED
    assert result.resume_from is None and result.identity_verified
    assert by_id(sink) == {"pain_yn": "no", "mood": "good", "sat": "4", "sbp": "120",
                           "comment": None}
    assert [a.question_id for a in result.answers] == list(by_id(sink))
    assert "test-all/q.pain" not in channel.keys  # `when: pain_yn` was false
    assert "test-all/q.tip" in channel.keys and channel.keys[-1] == "test-all/closing"
    comment = sink.answers[-1]
    assert comment.source is AnswerSource.VOICE and comment.audio is not None
    assert comment.note == "not transcribed: no model for en-US"
    assert channel.events[-1] == ("hangup", "us")
    assert not channel.ran_out and channel.actions == []  # every action used, none missing


async def test_a_patient_who_stops_answering_is_hung_up_on_and_the_call_is_partial(
        script_factory: Make, interpreter_factory: MakeInterp, sink: InMemoryAnswerSink,
        tmp_path: Path) -> None:
    channel = ScriptedChannel(START, tmp_path)
    result = await interpreter_factory().run(script_factory(), channel, call_context())
    assert channel.ran_out and channel.hung_up
    assert result.outcome is ScriptOutcome.PARTIAL and result.resume_from == "pain_yn"
    assert by_id(sink) == {}


async def test_true_when_asks_the_branch_and_red_flag_outside_hours_is_a_ticket(
        script_factory: Make, interpreter_factory: MakeInterp, sink: InMemoryAnswerSink,
        tmp_path: Path) -> None:
    channel = ScriptedChannel([*START, Press("1"), Press("1"), Press("5"), Press("7#"),
                               Press("190#"), Silence(), Silence()], tmp_path)
    result = await interpreter_factory().run(script_factory(), channel,
                                             call_context(staffed_hours=False))
    assert by_id(sink)["pain"] == "7"
    assert result.outcome is ScriptOutcome.ESCALATED
    assert not channel.transfers
    assert [(t.reason, t.severity, t.summary) for t in result.tickets] == [
        (TicketReason.RED_FLAG, Severity.HIGH, "pain after the operation"),
        (TicketReason.RED_FLAG, Severity.MEDIUM, "systolic 180 or more")]
    assert "If the pain gets worse call 120 now." in channel.texts
    assert any("call 120" in t for t in channel.texts if "medicines" not in t)
    flagged = {a.question_id: a.red_flag for a in sink.answers}
    assert flagged["pain_yn"] is Severity.HIGH and flagged["sbp"] is Severity.MEDIUM
    assert flagged["mood"] is None
    # each keypad answer says where it sits in the call: after its question was heard
    keyed = [a.offset_ms for a in sink.answers if a.value is not None]
    assert None not in keyed and keyed == sorted(keyed) and keyed[0] > 0


async def test_red_flag_in_staffed_hours_transfers_to_the_nurse_queue(
        script_factory: Make, interpreter_factory: MakeInterp, sink: InMemoryAnswerSink,
        tmp_path: Path) -> None:
    channel = ScriptedChannel([*START, Press("1")], tmp_path)
    result = await interpreter_factory().run(
        script_factory(), channel,
        call_context(staffed_hours=True, channel_variables={"FOLLOWUP_ATTEMPT": "42"}))
    assert result.outcome is ScriptOutcome.TRANSFERRED
    assert result.transferred_to == "followup-nurses"
    target, variables = channel.transfers[0]
    assert target == "followup-nurses"
    assert variables["FOLLOWUP_SEVERITY"] == "high" and variables["FOLLOWUP_ATTEMPT"] == "42"
    assert result.red_flags[0].transferred and not result.tickets
    assert sink.answers[0].red_flag is Severity.HIGH  # saved before the transfer
    assert result.resume_from == "mood"  # pain_yn was answered before the transfer


async def test_refused_nurse_transfer_falls_back_to_ticket_and_safety_message(
        script_factory: Make, interpreter_factory: MakeInterp, tmp_path: Path) -> None:
    channel = ScriptedChannel([*START, Press("1"), Press("1"), Press("3"), Press("2#"),
                               Press("110#"), Silence(), Silence()], tmp_path,
                              accept_transfer=False)
    result = await interpreter_factory().run(script_factory(), channel,
                                             call_context(staffed_hours=True))
    assert channel.transfers and channel.transfers[0][0] == "followup-nurses"
    assert result.outcome is ScriptOutcome.ESCALATED
    assert [t.reason for t in result.tickets] == [TicketReason.RED_FLAG]
    assert not result.red_flags[0].transferred
    assert "If the pain gets worse call 120 now." in channel.texts


async def test_star_repeats_without_using_a_try(
        script_factory: Make, interpreter_factory: MakeInterp, sink: InMemoryAnswerSink,
        tmp_path: Path) -> None:
    channel = ScriptedChannel([*START, Press("2"), Press("*"), Press("*"), Press("2"),
                               Press("3"), Press("100#"), Silence()], tmp_path)
    await interpreter_factory().run(script_factory(), channel, call_context())
    assert channel.keys.count("test-all/q.mood") == 3
    assert "test-all/msg.invalid" not in channel.keys
    assert by_id(sink)["mood"] == "bad"


async def test_zero_transfers_to_an_agent(
        script_factory: Make, interpreter_factory: MakeInterp, tmp_path: Path) -> None:
    channel = ScriptedChannel([*START, Press("2"), Press("0")], tmp_path)
    result = await interpreter_factory().run(script_factory(), channel, call_context())
    assert result.outcome is ScriptOutcome.TRANSFERRED
    assert channel.transfers[0][0] == "followup-agents"
    assert channel.transfers[0][1]["FOLLOWUP_REASON"] == "operator"
    assert result.resume_from == "mood"


async def test_zero_with_no_agent_raises_a_ticket_and_asks_again(
        script_factory: Make, interpreter_factory: MakeInterp, sink: InMemoryAnswerSink,
        tmp_path: Path) -> None:
    channel = ScriptedChannel([*START, Press("2"), Press("0"), Press("1"), HangUp()],
                              tmp_path, accept_transfer=False)
    result = await interpreter_factory().run(script_factory(), channel, call_context())
    assert [t.reason for t in result.tickets] == [TicketReason.ASKED_FOR_PERSON]
    assert "test-all/msg.operator_unavailable" in channel.keys
    assert by_id(sink)["mood"] == "good"
    assert result.outcome is ScriptOutcome.PARTIAL and result.resume_from == "sat"


async def test_nine_opts_out_after_confirmation(
        script_factory: Make, interpreter_factory: MakeInterp, tmp_path: Path) -> None:
    channel = ScriptedChannel([*START, Press("9"), Press("1")], tmp_path)
    result = await interpreter_factory().run(script_factory(), channel, call_context())
    assert result.outcome is ScriptOutcome.OPTED_OUT and result.opted_out
    assert "test-all/msg.optout_done" in channel.keys
    assert channel.events[-1] == ("hangup", "us")


async def test_nine_not_confirmed_carries_on(
        script_factory: Make, interpreter_factory: MakeInterp, sink: InMemoryAnswerSink,
        tmp_path: Path) -> None:
    channel = ScriptedChannel([*START, Press("9"), Press("5"), Press("2"), HangUp()], tmp_path)
    result = await interpreter_factory().run(script_factory(), channel, call_context())
    assert not result.opted_out
    assert "test-all/msg.optout_cancelled" in channel.keys
    assert by_id(sink) == {"pain_yn": "no"}


async def test_timeouts_and_invalid_keys_reprompt_then_mark_unanswered(
        script_factory: Make, interpreter_factory: MakeInterp, sink: InMemoryAnswerSink,
        tmp_path: Path) -> None:
    # retries: 1 -> two tries per question
    channel = ScriptedChannel([*START, Press("2"), Silence(), Press("7"), Press("6"),
                               Press("4"), Press("999#"), Press("120#"), Silence(), Silence()],
                              tmp_path)
    result = await interpreter_factory().run(script_factory(), channel, call_context())
    mood = next(a for a in sink.answers if a.question_id == "mood")
    assert mood.source is AnswerSource.NONE and mood.value is None
    assert mood.note == "no valid answer after 2 tries"
    assert "test-all/msg.timeout" in channel.keys and "test-all/msg.invalid" in channel.keys
    assert by_id(sink)["sat"] == "4"  # 6 was out of range, then 4
    assert by_id(sink)["sbp"] == "120"  # 999 out of range
    assert result.outcome is ScriptOutcome.COMPLETED


async def test_identity_failure_says_nothing_medical_and_raises_a_ticket(
        script_factory: Make, interpreter_factory: MakeInterp, sink: InMemoryAnswerSink,
        tmp_path: Path) -> None:
    channel = ScriptedChannel([Press("1"), Press("1111#"), Press("1981#")], tmp_path)
    result = await interpreter_factory().run(script_factory(), channel,
                                             call_context(staff_language="zh-CN"))
    assert result.outcome is ScriptOutcome.IDENTITY_FAILED
    assert not result.identity_verified and not sink.answers
    assert [t.reason for t in result.tickets] == [TicketReason.IDENTITY_FAILED]
    # written for the hospital's staff, who read Chinese, whatever the call's language
    assert result.tickets[0].summary == "身份未核实：2 次均未答对出生年份"
    assert not any("q." in k or k.endswith("/greeting") for k in channel.keys)
    assert not any("bypass" in t or "Wang" in t or "Cardiology" in t for t in channel.texts)
    assert channel.keys[-1] == "test-all/identity.failed"
    assert channel.events[-1] == ("hangup", "us")


async def test_unknown_birth_year_fails_closed(
        script_factory: Make, interpreter_factory: MakeInterp, tmp_path: Path) -> None:
    channel = ScriptedChannel([Press("1"), Press("1980#"), Press("1980#")], tmp_path)
    result = await interpreter_factory().run(script_factory(), channel,
                                             call_context(birth_year=None))
    assert result.outcome is ScriptOutcome.IDENTITY_FAILED


async def test_consent_declined_is_refused(
        script_factory: Make, interpreter_factory: MakeInterp, tmp_path: Path) -> None:
    channel = ScriptedChannel([Press("2")], tmp_path)
    result = await interpreter_factory().run(script_factory(), channel, call_context())
    assert result.outcome is ScriptOutcome.REFUSED
    # a refusal comes before identity: the callee heard the hospital's name, nothing more
    assert channel.keys == ["test-all/msg.opening", "test-all/consent.prompt",
                            "test-all/consent.declined"]
    assert channel.texts[0] == "Hello, this is Demo Hospital."


async def test_hangup_keeps_answers_and_a_resumed_call_skips_them(
        script_factory: Make, interpreter_factory: MakeInterp, sink: InMemoryAnswerSink,
        tmp_path: Path) -> None:
    script = script_factory()
    first = ScriptedChannel([*START, Press("1"), Press("1"), HangUp()], tmp_path)
    result = await interpreter_factory().run(script, first, call_context(staffed_hours=False))
    assert result.outcome is ScriptOutcome.PARTIAL
    assert result.resume_from == "sat"
    assert by_id(sink) == {"pain_yn": "yes", "mood": "good"}
    earlier = tuple(sink.answers)
    sink.answers.clear()

    second = ScriptedChannel([*START, Press("3"), Press("5#"), Press("130#"), Silence(), Silence()],
                             tmp_path)
    again = await interpreter_factory().run(script, second,
                                            call_context(earlier_answers=earlier))
    assert again.identity_verified  # identity is checked again
    assert second.keys[:4] == ["test-all/msg.opening", "test-all/consent.prompt",
                               "test-all/identity.prompt", "test-all/greeting"]
    asked = [k for k in second.keys if "/q." in k]
    assert asked[0] == "test-all/q.sat"  # pain_yn and mood are not asked again
    assert "test-all/q.pain" in asked  # branch from the earlier call's yes
    assert by_id(sink) == {"sat": "3", "pain": "5", "sbp": "130", "comment": None}
    assert sink.answers[-1].source is AnswerSource.NONE  # silent twice: unanswered
    assert again.outcome is ScriptOutcome.COMPLETED


async def test_hangup_during_identity_resumes_at_the_first_question(
        script_factory: Make, interpreter_factory: MakeInterp, tmp_path: Path) -> None:
    channel = ScriptedChannel([HangUp()], tmp_path)
    result = await interpreter_factory().run(script_factory(), channel, call_context())
    assert result.outcome is ScriptOutcome.PARTIAL and result.resume_from == "pain_yn"


@pytest.fixture
def two_scripts(script_factory: Make, tmp_path: Path) -> tuple[Script, Script]:
    script = script_factory()
    other_text = (Path(script.path).read_text(encoding="utf-8")
                  .replace("id: test-all", "id: test-other"))
    other = load_script(write_script(tmp_path / "s2", other_text, script_id="test-other"))
    return script, other


async def test_merged_scripts_check_identity_once(
        two_scripts: tuple[Script, Script], interpreter_factory: MakeInterp,
        sink: InMemoryAnswerSink, tmp_path: Path) -> None:
    script, other = two_scripts
    answers = [Press("2"), Press("1"), Press("4"), Press("120#"), Silence(), Silence()]
    channel = ScriptedChannel([*START, *answers, *answers], tmp_path)
    results = await interpreter_factory().run_many([script, other], channel, call_context())
    assert [r.outcome for r in results] == [ScriptOutcome.COMPLETED] * 2
    assert channel.keys.count("test-all/identity.prompt") == 1
    assert not any(k.startswith("test-other/identity") for k in channel.keys)
    assert channel.keys[-1] == "test-other/closing"
    assert len(sink.answers) == 10


async def test_merged_scripts_hangup_leaves_the_later_script_partial(
        two_scripts: tuple[Script, Script], interpreter_factory: MakeInterp,
        tmp_path: Path) -> None:
    script, other = two_scripts
    channel = ScriptedChannel([*START, Press("2"), HangUp()], tmp_path)
    results = await interpreter_factory().run_many([script, other], channel, call_context())
    assert [(r.outcome, r.resume_from) for r in results] == [
        (ScriptOutcome.PARTIAL, "mood"), (ScriptOutcome.PARTIAL, "pain_yn")]


# -- voice answers (scripted recognizer; the real Vosk model is in test_speech_vosk.py) --

KO_START = [Press("1"), Press("1980#")]


async def test_spoken_yes_no_maps_synonyms(
        script_factory: Make, interpreter_factory: MakeInterp, sink: InMemoryAnswerSink,
        tmp_path: Path) -> None:
    rec = ScriptedRecognizer({"clip-1.wav": Recognition("네", 0.9, words=("네",))})
    channel = ScriptedChannel([*KO_START, Speak("ne"), HangUp()], tmp_path)
    await interpreter_factory(rec).run(script_factory(locale="ko-KR"), channel,
                                       call_context())
    answer = sink.answers[0]
    assert (answer.value, answer.source, answer.transcript) == ("yes", AnswerSource.VOICE, "네")
    assert answer.confidence == 0.9 and answer.offset_ms is not None
    assert rec.calls[0][1] is not None and set(rec.calls[0][1]) == {"예", "네", "아니요", "아니오"}


async def test_low_confidence_reprompts_for_the_keypad(
        script_factory: Make, interpreter_factory: MakeInterp, sink: InMemoryAnswerSink,
        tmp_path: Path) -> None:
    rec = ScriptedRecognizer({"clip-1.wav": Recognition("예", 0.41, words=("예",))})
    channel = ScriptedChannel([*KO_START, Speak("mumble"), Press("2"), HangUp()], tmp_path)
    await interpreter_factory(rec).run(script_factory(locale="ko-KR"), channel,
                                       call_context())
    assert "test-all/msg.use_keypad" in channel.keys
    assert [e[0] for e in channel.events if e[1] == "test-all/q.pain_yn"] == ["record", "ask"]
    assert (sink.answers[0].value, sink.answers[0].source) == ("no", AnswerSource.KEYPAD)


async def test_out_of_vocabulary_or_mixed_words_reprompt_for_the_keypad(
        script_factory: Make, interpreter_factory: MakeInterp, sink: InMemoryAnswerSink,
        tmp_path: Path) -> None:
    rec = ScriptedRecognizer({"clip-1.wav": Recognition("[unk]", 1.0, words=("[unk]",)),
                              "clip-2.wav": Recognition("예 아니요", 0.95,
                                                        words=("예", "아니요"))})
    channel = ScriptedChannel([*KO_START, Speak("what"), Press("1"), Speak("hm"), Press("1"),
                               HangUp()], tmp_path)
    await interpreter_factory(rec).run(script_factory(locale="ko-KR"), channel,
                                       call_context(staffed_hours=False))
    assert [(a.question_id, a.value, a.source) for a in sink.answers] == [
        ("pain_yn", "yes", AnswerSource.KEYPAD), ("mood", "good", AnswerSource.KEYPAD)]


async def test_key_pressed_during_a_voice_prompt_is_a_keypad_answer(
        script_factory: Make, interpreter_factory: MakeInterp, sink: InMemoryAnswerSink,
        tmp_path: Path) -> None:
    rec = ScriptedRecognizer({})
    channel = ScriptedChannel([*KO_START, Press("2"), HangUp()], tmp_path)
    await interpreter_factory(rec).run(script_factory(locale="ko-KR"), channel,
                                       call_context())
    assert (sink.answers[0].value, sink.answers[0].source) == ("no", AnswerSource.KEYPAD)
    assert not rec.calls


async def test_free_answer_is_stored_with_transcript_and_confidence(
        script_factory: Make, interpreter_factory: MakeInterp, sink: InMemoryAnswerSink,
        tmp_path: Path) -> None:
    rec = ScriptedRecognizer({"clip-1.wav": Recognition("감사합니다", 0.83,
                                                         words=("감사합니다",))})
    channel = ScriptedChannel([*KO_START, Press("2"), Press("1"), Press("4"), Press("120#"),
                               Speak("thanks")], tmp_path)
    result = await interpreter_factory(rec).run(script_factory(locale="ko-KR"), channel,
                                                call_context())
    comment = sink.answers[-1]
    assert (comment.transcript, comment.confidence, comment.needs_review) == (
        "감사합니다", 0.83, False)
    assert comment.audio is not None and comment.audio.name == "clip-1.wav"
    assert rec.calls[-1] == ("clip-1.wav", None)  # free transcription, no grammar
    assert result.outcome is ScriptOutcome.COMPLETED


async def test_doubtful_free_answer_needs_review(
        script_factory: Make, interpreter_factory: MakeInterp, sink: InMemoryAnswerSink,
        tmp_path: Path) -> None:
    rec = ScriptedRecognizer({"clip-1.wav": Recognition("어", 0.3, words=("어",))})
    channel = ScriptedChannel([*KO_START, Press("2"), Press("1"), Press("4"), Press("120#"),
                               Speak("uh")], tmp_path)
    await interpreter_factory(rec).run(script_factory(locale="ko-KR"), channel,
                                       call_context())
    comment = sink.answers[-1]
    assert comment.needs_review and comment.transcript == "어"


async def test_locale_without_model_keeps_the_clip(
        script_factory: Make, interpreter_factory: MakeInterp, sink: InMemoryAnswerSink,
        tmp_path: Path) -> None:
    rec = ScriptedRecognizer({}, locales=("ko-KR",))
    channel = ScriptedChannel([*START, Press("2"), Press("1"), Press("4"), Press("120#"),
                               Speak("你好")], tmp_path)
    result = await interpreter_factory(rec).run(script_factory(locale="zh-CN"), channel,
                                                call_context())
    comment = sink.answers[-1]
    assert comment.note == "not transcribed: no model for zh-CN"
    assert comment.audio is not None and comment.audio.exists()
    assert result.outcome is ScriptOutcome.COMPLETED
    # zh-CN yes/no was asked by keypad (no model), not recorded
    assert ("ask", "test-all/q.pain_yn") in channel.events


class PatientRecognizer(ScriptedRecognizer):
    """Finishes a free transcription only once the call has moved on (or gives up after
    ten seconds): shows whether the interpreter waited for it before the closing."""

    def __init__(self, channel_ref: list[ScriptedChannel]) -> None:
        super().__init__({"clip-1.wav": Recognition("좋아요", 0.9, words=("좋아요",))})
        self.channel_ref = channel_ref
        self.saw_closing = False

    async def recognize(self, audio: Path, locale: str, grammar: Sequence[str] | None = None,
                        offset_ms: int = 0) -> Recognition:
        for _ in range(10_000):  # prompts render in worker threads: wait in real time
            if "test-all/closing" in self.channel_ref[0].keys:
                self.saw_closing = True
                break
            await asyncio.sleep(0.001)
        return await super().recognize(audio, locale, grammar, offset_ms)


async def test_free_answer_is_transcribed_while_the_call_goes_on(
        script_factory: Make, interpreter_factory: MakeInterp, sink: InMemoryAnswerSink,
        tmp_path: Path) -> None:
    channel = ScriptedChannel([*KO_START, Press("2"), Press("1"), Press("4"), Press("120#"),
                               Speak("good")], tmp_path)
    rec = PatientRecognizer([channel])
    result = await interpreter_factory(rec).run(script_factory(locale="ko-KR"), channel,
                                                call_context())
    assert rec.saw_closing  # the closing played before the transcript was ready
    comment = sink.answers[-1]  # ... and the answer was still saved before run() returned
    assert (comment.question_id, comment.transcript) == ("comment", "좋아요")
    assert result.answers[-1] == comment and result.outcome is ScriptOutcome.COMPLETED


async def test_spoken_choice_maps_to_the_option_value(
        script_factory: Make, interpreter_factory: MakeInterp, sink: InMemoryAnswerSink,
        tmp_path: Path) -> None:
    rec = ScriptedRecognizer({"clip-1.wav": Recognition("나쁨", 0.8, words=("나쁨",))})
    channel = ScriptedChannel([*KO_START, Press("2"), Speak("bad"), HangUp()], tmp_path)
    await interpreter_factory(rec).run(script_factory(locale="ko-KR"), channel,
                                       call_context())
    mood = sink.answers[1]
    assert (mood.question_id, mood.value, mood.source) == ("mood", "bad", AnswerSource.VOICE)
    assert rec.calls[0][1] is not None and set(rec.calls[0][1]) == {"좋음", "나쁨"}


async def test_merged_call_asks_consent_and_identity_once(
        two_scripts: tuple[Script, Script], interpreter_factory: MakeInterp,
        tmp_path: Path) -> None:
    script, other = two_scripts
    channel = ScriptedChannel([Press("1"), Press("1111#"), Press("2222#")], tmp_path)
    results = await interpreter_factory().run_many([script, other], channel, call_context())
    assert [r.outcome for r in results] == [ScriptOutcome.IDENTITY_FAILED] * 2
    assert channel.keys == ["test-all/msg.opening", "test-all/consent.prompt",
                            "test-all/identity.prompt", "test-all/identity.retry",
                            "test-all/identity.failed"]
