"""In headless Chromium, in zh-CN: an agent adds a patient's number to the do-not-call list
from the nav link, and the patient page then says so, with the reason in words and the time
in hospital time. No raw stored value, no UTC time, no login name where a name belongs.
Screenshots go to FOLLOWUP_TEST_SCREENSHOTS (a folder) when set."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.clock import FakeClock
from core.enums import DncReason, DncSource
from core.store.db import Database
from core.store.models import Patient
from tests.browser.test_console_browser import _login, browser  # noqa: F401 - the fixture
from tests.unit.console.fixtures import Site, running_site

pytestmark = pytest.mark.browser

RAW = sorted({v.value for v in (*DncReason, *DncSource)})


@pytest.fixture
def web(sqlite_db: Database, clock: FakeClock, tmp_path: Path) -> Iterator[Site]:
    with running_site(sqlite_db, clock, tmp_path) as site:
        yield site


def _problems(text: str) -> list[str]:
    found = [f"raw value {v!r}" for v in RAW
             if re.search(rf"(?<![\w/.-]){re.escape(v)}(?![\w/.-])", text)]
    if re.search(r"\d{2}:\d{2}(:\d{2})? UTC(?![+-])", text):
        found.append("a time printed as UTC")
    if re.search(r"(?<![\w.-])agent_card(?![\w.-])", text):
        found.append("the login name instead of the display name")
    return found


def _shot(page: Any, name: str) -> None:
    shots = os.environ.get("FOLLOWUP_TEST_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(shots) / name), full_page=True)


def test_an_agent_adds_a_number_and_the_patient_page_shows_it(
        browser: Any, web: Site) -> None:  # noqa: F811
    with web.db.session() as s:
        patient = s.get(Patient, web.seeded.card_patient)
        assert patient is not None and patient.phone
        phone, name = patient.phone, patient.name
    national = phone.removeprefix("+86")
    page = _login(browser, web, "agent_card")
    page.click("nav >> text=免打扰名单")
    page.wait_for_selector("#dnc-add")
    page.fill("#dnc-add input[name=phone]", f"{national[:3]}-{national[3:7]}-{national[7:]}")
    page.select_option("#dnc-add select[name=reason]", label="患者要求")
    page.fill("#dnc-add input[name=note]", "患者来电要求不再随访")
    page.fill("#dnc-add input[name=expires]", "2026-06-30")
    page.click("#dnc-add button[type=submit]")
    page.wait_for_selector("#dnc tbody tr")
    assert "号码已加入免打扰名单" in page.inner_text(".flash")
    row = page.inner_text("#dnc tbody tr")
    assert phone in row and "患者要求" in row and "控制台" in row and "AGENT_CARD" in row
    assert "2026-03-10 09:00 UTC+8" in row and "2026-06-30 00:00 UTC+8" in row
    assert page.locator("form.dnc-remove").count() == 0  # an agent may not remove
    problems = _problems(page.inner_text("#dnc"))
    _shot(page, "dnc_list.png")
    page.goto(f"{web.base}/patients/{web.seeded.card_patient}")
    shown = page.inner_text("#patient-dnc")
    assert phone in shown and "患者要求" in shown
    assert "自 2026-03-10 09:00 UTC+8 起" in shown and "至 2026-06-30 00:00 UTC+8" in shown
    assert name in page.inner_text("h1")
    problems += _problems(page.inner_text("main"))
    _shot(page, "dnc_patient.png")
    page.context.close()
    assert not problems, problems
