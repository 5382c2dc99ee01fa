"""Every page each role can open, in headless Chromium with a zh-CN browser: no stored enum
value shows as its raw text, no time is printed as UTC, and no page shows a script or a
question by its id. Screenshots of every page are written to FOLLOWUP_TEST_SCREENSHOTS (a
folder) when set, for a person to look at."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import core.enums
from console.i18n import ENUM_PREFIXES
from core.clock import FakeClock
from core.store.db import Database
from tests.browser.test_console_browser import _login, browser  # noqa: F401 - the fixture
from tests.unit.console.fixtures import Site, running_site
from tests.unit.console.seed import USERS

pytestmark = pytest.mark.browser

# Stored values that are also ordinary words a zh page may carry in an id or a code: none of
# these may be shown as a raw enum either, but they are checked only as whole words.
RAW_VALUES = sorted({m.value for name in ENUM_PREFIXES for m in getattr(core.enums, name)})


@pytest.fixture
def web(sqlite_db: Database, clock: FakeClock, tmp_path: Path) -> Iterator[Site]:
    with running_site(sqlite_db, clock, tmp_path) as site:
        yield site


def _pages(site: Site, user: str) -> list[str]:
    sd = site.seeded
    common = ["/", "/calls", "/tasks"]
    return {
        "sys": ["/", "/users", "/definitions"],
        "admin": [*common, f"/calls/{sd.card_call}", f"/patients/{sd.card_patient}",
                  "/reports/monthly", "/definitions"],
        "mgr_card": [*common, f"/calls/{sd.card_call}", f"/patients/{sd.card_patient}",
                     "/reports/monthly"],
        "sup_card": [*common, f"/calls/{sd.card_call}", "/spotcheck", "/worklist"],
        "agent_card": [*common, f"/calls/{sd.card_call}", f"/patients/{sd.card_patient}",
                       "/worklist"],
    }[user]


def test_every_page_every_role_reads_in_chinese(browser: Any, web: Site) -> None:  # noqa: F811
    shots = os.environ.get("FOLLOWUP_TEST_SCREENSHOTS")
    problems: list[str] = []
    for user in ("sys", "admin", "mgr_card", "sup_card", "agent_card"):
        page = _login(browser, web, user)
        for path in _pages(web, user):
            response = page.goto(web.base + path)
            assert response is not None and response.status == 200, (user, path)
            text = page.inner_text("main") if page.locator("main").count() else \
                page.inner_text("body")
            for username in USERS:  # a login name is the user's own text ("admin")
                text = re.sub(rf"(?<![\w.-]){username}(?![\w.-])", "", text)
            # texts the hospital wrote, in any language (an SMS template's English text
            # says "reminder"): not labels, so not checked for stored values
            for free in page.locator(".free-text").all_inner_texts():
                text = text.replace(free, "")
            for value in RAW_VALUES:
                if re.search(rf"(?<![\w/.-]){re.escape(value)}(?![\w/.-])", text):
                    problems.append(f"{user} {path}: raw value {value!r}")
            ids = re.findall(r"(?<![\w-])[a-z]+(?:-[a-z]+)+(?:/[a-z_]+)?(?![\w-])", text)
            if ids:
                problems.append(f"{user} {path}: scripts or questions shown by id "
                                f"{sorted(set(ids))}")
            if re.search(r"\d{2}:\d{2}(:\d{2})? UTC(?![+-])", text):
                problems.append(f"{user} {path}: a time printed as UTC")
            if shots:
                Path(shots).mkdir(parents=True, exist_ok=True)
                name = f"{user}{path.replace('/', '_') or '_home'}.png"
                page.screenshot(path=str(Path(shots) / name), full_page=True)
        page.context.close()
    assert not problems, "\n".join(problems)
