"""The patient's questionnaire in headless Chromium at a phone's size (390x844), in zh-CN:
a patient completes it through the link and the same link is then refused; a wrong birth
year shows no health question (three lock the link); a red-flag answer shows the safety
message and raises the ticket. No raw stored value on any page, nothing wider than the
phone. Screenshots go to FOLLOWUP_TEST_SCREENSHOTS (a folder) when set."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core.clock import FakeClock
from core.enums import AnswerSource, QuestionKind, ScriptOutcome, Severity, TicketReason
from core.store.db import Database
from core.store.models import Answer, Ticket
from tests.browser.test_console_browser import browser  # noqa: F401 - the fixture
from tests.contract.patient_web_support import BORN, NAME, Seeded, build, seed
from tests.unit.console.server import serving

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
RAW = sorted({*(v.value for v in (*QuestionKind, *ScriptOutcome, *Severity, *TicketReason,
                                   *AnswerSource)), "yes", "no", "None"})
HEALTH = ("胸痛", "气短", "脚踝", "收缩压", "服药", "意见")


@pytest.fixture
def site(sqlite_db: Database, clock: FakeClock) -> Iterator[tuple[str, list[Seeded]]]:
    seeded = seed(sqlite_db, clock, patients=3)
    app, _ = build(sqlite_db, clock)
    with serving(app) as base:
        yield base, seeded


def _phone(browser: Any) -> Any:  # noqa: F811
    context = browser.new_context(viewport=PHONE, locale="zh-CN", device_scale_factor=2,
                                  is_mobile=True, has_touch=True)
    return context.new_page()


def _problems(page: Any) -> list[str]:
    text = page.inner_text("body")
    found = [f"raw value {v!r}" for v in RAW
             if re.search(rf"(?<![\w/.-]){re.escape(v)}(?![\w/.-])", text)]
    if "{" in text or "}" in text:
        found.append("an unrendered placeholder")
    if "请按" in text:
        found.append("a keypad instruction")
    wide = page.evaluate("document.documentElement.scrollWidth")
    if wide > PHONE["width"]:
        found.append(f"wider than the phone: {wide}px")
    return found


def _shot(page: Any, name: str) -> None:
    shots = os.environ.get("FOLLOWUP_TEST_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(shots) / name), full_page=True)


def _year(page: Any, year: str) -> None:
    page.fill("#year", year)
    page.click("#identity button[type=submit]")
    page.wait_for_load_state()


def _choose(page: Any, label: str) -> None:
    page.click(f"#question button.choice:text-is('{label}')")
    page.wait_for_load_state()


def _type(page: Any, value: str) -> None:
    page.fill("#answer", value)
    page.click("#question button[type=submit]")
    page.wait_for_load_state()


def test_a_patient_completes_the_questionnaire_on_a_phone(
        browser: Any, site: tuple[str, list[Seeded]], sqlite_db: Database) -> None:  # noqa: F811
    base, (first, *_) = site
    page = _phone(browser)
    page.goto(f"{base}/q/{first.token}")
    assert page.is_visible("#identity") and page.locator("#question").count() == 0
    problems = _problems(page)
    _shot(page, "patient_web_identity.png")
    _year(page, str(BORN))
    assert f"{NAME}女士" in page.inner_text("main")
    assert page.inner_text("#question-text") == "出院以后，您有没有胸痛或胸闷？"
    problems += _problems(page)
    _shot(page, "patient_web_question_yes_no.png")
    _choose(page, "否")
    _choose(page, "否")
    assert "收缩压" in page.inner_text("#question-text")
    assert page.get_attribute("#answer", "min") == "60"
    problems += _problems(page)
    _shot(page, "patient_web_question_number.png")
    page.fill("#answer", "300")  # out of range: the field refuses it
    page.click("#question button[type=submit]")
    assert page.evaluate("document.querySelector('#answer').validity.rangeOverflow")
    assert "收缩压" in page.inner_text("#question-text")
    # and so does the server, for a page whose field was tampered with
    page.evaluate("document.querySelector('#answer').removeAttribute('max')")
    page.click("#question button[type=submit]")
    page.wait_for_load_state()
    assert "请输入 60 到 260 之间的整数。" in page.inner_text(".problem")
    problems += _problems(page)
    _shot(page, "patient_web_number_refused.png")
    _type(page, "128")
    _choose(page, "是")
    assert page.locator("textarea#answer").count() == 1
    problems += _problems(page)
    _shot(page, "patient_web_question_text.png")
    _type(page, "最近睡得不太好，其他都好")
    assert page.is_visible("#done") and "问卷已完成" in page.inner_text("#done")
    problems += _problems(page)
    _shot(page, "patient_web_done.png")
    page.goto(f"{base}/q/{first.token}")
    assert "问卷已经填写过了" in page.inner_text("main")
    assert not any(word in page.inner_text("body") for word in HEALTH)
    problems += _problems(page)
    _shot(page, "patient_web_used_again.png")
    page.context.close()
    with sqlite_db.session() as s:
        sources = {a.source for a in s.execute(select(Answer)).scalars()}
    assert sources == {AnswerSource.WEB}
    assert not problems, problems


def test_a_wrong_birth_year_shows_no_health_question(
        browser: Any, site: tuple[str, list[Seeded]], sqlite_db: Database) -> None:  # noqa: F811
    base, (_, second, _) = site
    page = _phone(browser)
    page.goto(f"{base}/q/{second.token}")
    problems: list[str] = []
    for year, left in (("1970", "2"), ("1971", "1")):
        _year(page, year)
        body = page.inner_text("body")
        assert f"您还可以再试 {left} 次" in body and page.is_visible("#identity")
        assert not any(word in body for word in HEALTH)
        assert page.locator("#question").count() == 0
        problems += _problems(page)
    _shot(page, "patient_web_wrong_year.png")
    _year(page, "1972")
    body = page.inner_text("body")
    assert "链接已锁定" in body and not any(word in body for word in HEALTH)
    problems += _problems(page)
    _shot(page, "patient_web_locked.png")
    page.goto(f"{base}/q/{second.token}")
    assert "链接已锁定" in page.inner_text("body") and page.locator("#identity").count() == 0
    page.context.close()
    with sqlite_db.session() as s:
        [ticket] = s.execute(select(Ticket)).scalars()
    assert ticket.reason is TicketReason.IDENTITY_FAILED and ticket.task_id == second.task_id
    assert not problems, problems


def test_a_red_flag_answer_on_the_web_creates_the_ticket(
        browser: Any, site: tuple[str, list[Seeded]], sqlite_db: Database) -> None:  # noqa: F811
    base, (_, _, third) = site
    page = _phone(browser)
    page.goto(f"{base}/q/{third.token}")
    _year(page, str(BORN))
    _choose(page, "是")  # chest pain
    safety = page.inner_text(".safety")
    assert "重要提示" in safety and "如果胸痛加重或持续不缓解，请立即拨打120。" in safety
    assert "气短" in page.inner_text("#question-text")
    problems = _problems(page)
    _shot(page, "patient_web_red_flag.png")
    with sqlite_db.session() as s:
        [ticket] = s.execute(select(Ticket)).scalars()
    assert (ticket.reason, ticket.severity, ticket.summary, ticket.task_id) == (
        TicketReason.RED_FLAG, Severity.HIGH, "出院后胸痛或胸闷", third.task_id)
    page.click("footer a.optout")
    assert "不再接收随访短信？" in page.inner_text("main")
    problems += _problems(page)
    _shot(page, "patient_web_optout.png")
    page.click("#optout button[type=submit]")
    assert "已为您退订" in page.inner_text("main")
    page.context.close()
    assert not problems, problems
