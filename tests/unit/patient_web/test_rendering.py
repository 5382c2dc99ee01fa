"""Question texts lose their keypad instructions on a page; forms become typed answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.enums import QuestionKind
from ivr.script_loader import load_scripts
from patient_web.rendering import Problem, question_form, read_answer, web_wording
from patient_web.web_channel import WebInput

REPO = Path(__file__).resolve().parents[3]
SCRIPTS = load_scripts(REPO / "scripts")
KEYPAD = {"zh-CN": ("按1", "按2", "按井号", "请按"), "en-US": ("Press ", "press the", "hash key"),
          "ko-KR": ("눌러", "누르")}


@pytest.mark.parametrize(("source", "locale", "shown"), [
    ("出院以后，您有没有胸痛或胸闷？ 是请按1，否请按2。", "zh-CN",
     "出院以后，您有没有胸痛或胸闷？"),
    ("请输入您最近一次测量的收缩压，也就是高压的数值，输完请按井号键。", "zh-CN",
     "请输入您最近一次测量的收缩压，也就是高压的数值。"),
    ("您对护士的服务满意吗？请按1到5打分，1分非常不满意，5分非常满意。", "zh-CN",
     "您对护士的服务满意吗？1分非常不满意，5分非常满意。"),
    ("最后，请在提示音后说出您的其他意见或问题，说完请按井号键。", "zh-CN",
     "最后，请写下您的其他意见或问题。"),
    ("Are your ankles or legs swollen? Press 1 for yes, 2 for no.", "en-US",
     "Are your ankles or legs swollen?"),
    ("Please enter your last systolic blood pressure, the top number, then press the hash "
     "key.", "en-US", "Please enter your last systolic blood pressure, the top number."),
    ("발목이나 다리가 부으셨습니까? 예는 1번, 아니요는 2번을 누르거나 말씀해 주세요.", "ko-KR",
     "발목이나 다리가 부으셨습니까?"),
    ("没有要按的键。", "zh-CN", "没有要按的键。"),
])
def test_keypad_instructions_are_taken_out(source: str, locale: str, shown: str) -> None:
    assert web_wording(source, locale) == shown


def test_no_question_of_any_script_keeps_a_keypad_instruction() -> None:
    for script in SCRIPTS:
        for q in script.questions:
            shown = web_wording(q.text.source, script.locale)
            assert shown, (script.id, q.id)
            leftovers = [w for w in KEYPAD[script.locale] if w in shown]
            assert not leftovers, (script.id, script.locale, q.id, shown)


def test_forms_carry_the_choices_and_ranges() -> None:
    cardio = next(s for s in SCRIPTS if s.id == "cardiology-post-discharge"
                  and s.locale == "zh-CN")
    chest = question_form(cardio, cardio.question("chest_pain"), "有没有胸痛？是请按1", "zh-CN")
    assert chest.buttons and not chest.numeric
    assert [(c.key, c.label) for c in chest.choices] == [("1", "是"), ("2", "否")]
    sbp = question_form(cardio, cardio.question("sbp"), "收缩压", "en-US")
    assert sbp.numeric and not sbp.buttons and (sbp.min, sbp.max) == (60, 260)
    comment = question_form(cardio, cardio.question("comment"), "意见", "zh-CN")
    assert comment.kind is QuestionKind.VOICE and comment.max_chars == 500
    surgery = next(s for s in SCRIPTS if s.id == "surgery-post-discharge"
                   and s.locale == "zh-CN")
    wound = next(q for q in surgery.questions if q.kind is QuestionKind.CHOICE)
    form = question_form(surgery, wound, wound.text.source, "zh-CN")
    assert [c.label for c in form.choices] == ["愈合良好", "红肿", "渗液或出血"]


def test_answers_are_checked_at_the_boundary() -> None:
    cardio = next(s for s in SCRIPTS if s.id == "cardiology-post-discharge"
                  and s.locale == "zh-CN")
    sbp = cardio.question("sbp")
    assert read_answer(cardio, sbp, {"answer": "128"}) == WebInput(cardio.id, "sbp", "128")
    assert read_answer(cardio, sbp, {"answer": "300"}) == Problem(
        "out_of_range", {"min": 60, "max": 260})
    assert isinstance(read_answer(cardio, sbp, {"answer": "-5"}), Problem)
    assert isinstance(read_answer(cardio, sbp, {"answer": "12.5"}), Problem)
    chest = cardio.question("chest_pain")
    assert read_answer(cardio, chest, {"answer": "2"}) == WebInput(cardio.id, "chest_pain", "2")
    assert read_answer(cardio, chest, {"answer": "9"}) == Problem("pick_one")
    assert read_answer(cardio, chest, {}) == Problem("pick_one")
    comment = cardio.question("comment")
    assert read_answer(cardio, comment, {"answer": "  睡得\n不好  "}) == WebInput(
        cardio.id, "comment", words="睡得 不好")
    assert read_answer(cardio, comment, {"answer": "  "}) == Problem("write_something")
    assert read_answer(cardio, comment, {"answer": "长" * 501}).key == "too_long"  # type: ignore[union-attr]


def test_no_greeting_on_a_page_calls_itself_a_phone_call() -> None:
    greetings = [(s.locale, s.greeting.source) for s in SCRIPTS]
    assert greetings
    for locale, source in greetings:
        shown = web_wording(source, locale)
        for call in ("随访电话", "follow-up call", "추적 관찰 전화"):
            assert call not in shown, (locale, shown)
