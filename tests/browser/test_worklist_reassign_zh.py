"""In headless Chromium with a zh-CN browser: a supervisor reassigns a ticket an agent
claimed to another agent, who then finds it under 我的工单. Neither page shows a stored
enum value raw, a time as UTC, or a user by id. Screenshots go to FOLLOWUP_TEST_SCREENSHOTS
(a folder) when it is set, else to the test's temporary folder."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from console.passwords import hash_password
from core.clock import FakeClock
from core.enums import Role, TicketStatus
from core.store.db import Database
from core.store.models import AuditEntry, Ticket, User
from tests.browser.test_console_browser import _login, browser  # noqa: F401 - the fixture
from tests.browser.test_console_zh_walk import RAW_VALUES
from tests.unit.console.fixtures import Site, running_site
from tests.unit.console.seed import PASSWORD, USERS

pytestmark = pytest.mark.browser


@pytest.fixture
def web(sqlite_db: Database, clock: FakeClock, tmp_path: Path) -> Iterator[Site]:
    with running_site(sqlite_db, clock, tmp_path) as site:
        with site.db.session() as s:
            s.add(User(username="agent_two", display_name="李娜",
                       password_hash=hash_password(PASSWORD), role=Role.AGENT,
                       department_id=site.seeded.card_id, active=True,
                       created_at=clock.now()))
            t = s.get(Ticket, site.seeded.card_ticket)
            assert t is not None
            t.status = TicketStatus.CLAIMED
            t.assigned_user_id = site.seeded.users["agent_card"]
            t.claimed_at = clock.now()
        yield site


def _problems(page: Any) -> list[str]:
    text = page.inner_text("main")
    for username in [*USERS, "agent_two"]:  # a login name is the user's own text
        text = re.sub(rf"(?<![\w.-]){username}(?![\w.-])", "", text)
    found = [f"raw value {v!r}" for v in RAW_VALUES
             if re.search(rf"(?<![\w/.-]){re.escape(v)}(?![\w/.-])", text)]
    if re.search(r"\d{2}:\d{2}(:\d{2})? UTC(?![+-])", text):
        found.append("a time printed as UTC")
    if re.search(r"(处理人|转派给)[:：]?\s*#?\d+\b", text):
        found.append("a user shown by id")
    return found


def test_a_supervisor_reassigns_and_the_agent_finds_it_under_my_tickets(
        browser: Any, web: Site, tmp_path: Path) -> None:  # noqa: F811
    shots = Path(os.environ.get("FOLLOWUP_TEST_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    tid = web.seeded.card_ticket
    sup = _login(browser, web, "sup_card")
    sup.goto(web.base + "/worklist")
    ticket = sup.locator(f"#t{tid}")
    assert ticket.locator(".assignee").inner_text() == "AGENT_CARD"
    assert ticket.locator(".tag.status").inner_text() == "处理中"
    ticket.locator("select[name=user_id]").select_option(label="李娜 (agent_two)")
    sup.screenshot(path=str(shots / "worklist_supervisor_before.png"), full_page=True)
    ticket.locator("button.reassign").click()
    sup.wait_for_selector(".flash")
    assert sup.inner_text(".flash") == "工单已转派"
    assert sup.locator(f"#t{tid} .assignee").inner_text() == "李娜"
    problems = _problems(sup)
    sup.context.close()

    agent = _login(browser, web, "agent_two")
    agent.goto(web.base + "/worklist")
    agent.click("#tab-mine")
    agent.wait_for_selector(f"#t{tid}")
    assert agent.inner_text("#tab-mine") == "我的工单" and "view=mine" in agent.url
    mine = agent.locator(f"#t{tid}")
    assert mine.locator(".assignee").inner_text() == "李娜"
    assert mine.locator("button.close").count() == 1  # theirs to work now
    agent.screenshot(path=str(shots / "worklist_my_tickets_zh.png"), full_page=True)
    problems += _problems(agent)
    agent.context.close()
    assert not problems, problems
    with web.db.session() as s:
        entry = s.execute(select(AuditEntry).where(AuditEntry.action == "ticket.reassign")
                          ).scalar_one()
    assert entry.actor == "user:sup_card"
    assert entry.detail == {"from_user": "agent_card", "to_user": "agent_two"}
