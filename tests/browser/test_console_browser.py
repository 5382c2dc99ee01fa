"""The console in headless Chromium (Debian's, driven by Playwright; no browser download).

Each role logs in through the form. The walk: dashboard -> call -> play the recording (the
playback lands in the audit log) and jump to an answer -> spot-check sample and score ->
worklist ticket disposition -> monthly report and Excel download. A department manager
opening another department's URLs gets 403/404. A recording whose bytes changed is flagged
in the player, never played.
"""

from __future__ import annotations

import datetime as dt
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from core.clock import FakeClock
from core.enums import TaskStatus, TicketStatus
from core.store.db import Database
from core.store.models import AuditEntry, FollowupTask, QaReview, Ticket
from tests.unit.console.fixtures import Site, running_site
from tests.unit.console.seed import PASSWORD

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--autoplay-policy=no-user-gesture-required"]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"headless Chromium not found at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed in the venv")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def web(sqlite_db: Database, clock: FakeClock, tmp_path: Path) -> Iterator[Site]:
    with running_site(sqlite_db, clock, tmp_path) as site:
        yield site


def _login(browser: Any, site: Site, user: str) -> Any:
    context = browser.new_context(accept_downloads=True, locale="zh-CN")
    page = context.new_page()
    page.goto(site.base + "/")
    assert "/login" in page.url
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#dashboard")
    assert page.get_attribute(".user", "data-role") is not None
    return page


def _audit(site: Site, action: str) -> list[AuditEntry]:
    with site.db.session() as s:
        return list(s.execute(select(AuditEntry).where(AuditEntry.action == action)).scalars())


def test_every_role_logs_in_and_sees_the_dashboard(browser: Any, web: Site) -> None:
    for user in ("sys", "admin", "mgr_card", "sup_card", "agent_card"):
        page = _login(browser, web, user)
        assert page.locator("#dashboard tbody tr").count() >= 1
        page.context.close()
    assert sorted(e.actor for e in _audit(web, "login.success")) == sorted(
        f"user:{u}" for u in ("sys", "admin", "mgr_card", "sup_card", "agent_card"))


def test_supervisor_walk_call_playback_jump_and_spot_check(browser: Any, web: Site) -> None:
    page = _login(browser, web, "sup_card")
    page.click("a[href='/calls']")
    page.click(f"a.call-link[href='/calls/{web.seeded.card_call}']")
    page.wait_for_selector("#answers")
    assert "感觉好多了" in page.inner_text("#answers")
    page.click("#play")
    page.wait_for_selector("#player[data-state=loaded]", timeout=15000)
    plays = _audit(web, "recording.play")
    assert [(e.actor, e.object_id) for e in plays] == [
        ("user:sup_card", str(web.seeded.card_recording))]
    # the voice answer: jump to it in the call, and its own clip plays inline
    page.click("button.jump[data-offset='3.2']")
    page.wait_for_function("document.getElementById('audio').currentTime >= 3.2", timeout=5000)
    assert len(_audit(web, "recording.play")) == 1  # jumping re-uses the fetched audio
    assert page.get_attribute("#answers audio.clip", "src") == \
        f"/recordings/{web.seeded.card_clip}/audio"
    page.click("button.jump[data-offset='4.7']")  # a keypad answer: where the key ended
    page.wait_for_function("Math.abs(document.getElementById('audio').currentTime - 4.7) < 0.2",
                           timeout=5000)

    page.click("a[href='/spotcheck']")
    page.select_option("#new-sample select[name=department_id]",
                       str(web.seeded.card_id))
    page.fill("#new-sample input[name=day]", "2026-03-10")
    page.fill("#new-sample input[name=rate_percent]", "100")
    page.click("#new-sample button[type=submit]")
    page.wait_for_selector("#progress[data-reviewed='0'][data-size='1']")
    page.click("a.review-link")
    page.wait_for_selector("#qa-form")
    for name, score in (("identity", "5"), ("script", "4"), ("clarity", "4"),
                        ("transcript", "2")):
        page.fill(f"input[name=score_{name}]", score)
    page.check("input[name=flags][value=transcript_wrong]")
    page.fill("textarea[name=comment]", "转写把“累”听错了")
    page.click("#qa-form button[type=submit]")
    page.wait_for_selector("#progress[data-reviewed='1'][data-size='1']")
    with web.db.session() as s:
        review = s.execute(select(QaReview)).scalar_one()
    assert review.scores["transcript"] == 2 and review.flags == ["transcript_wrong"]


def test_agent_walk_worklist_disposition(browser: Any, web: Site) -> None:
    page = _login(browser, web, "agent_card")
    page.click("a[href='/worklist']")
    tid = web.seeded.card_ticket
    card = f"#t{tid}"
    page.click(f"{card} button.claim")
    page.wait_for_selector(f"{card}[data-status=claimed]")
    page.fill(f"{card} input[name=extension]", "2001")
    page.click(f"{card} button.call")
    page.wait_for_selector(".flash")
    assert "ringing 2001" in page.inner_text(".flash")
    # markup in the notes is refused with a message, nothing stored
    page.select_option(f"{card} select[name=disposition]", "reached_referred")
    page.fill(f"{card} textarea[name=notes]", "<script>alert(1)</script>")
    page.click(f"{card} button.close")
    page.wait_for_selector("[data-code=invalid_input]")
    with web.db.session() as s:
        assert s.get(Ticket, tid).status is TicketStatus.CLAIMED
    page.goto(web.base + "/worklist")
    page.select_option(f"{card} select[name=disposition]", "reached_referred")
    page.fill(f"{card} textarea[name=notes]", "已转诊心内科门诊")
    page.click(f"{card} button.close")
    page.wait_for_selector(".flash")
    assert page.locator(card).count() == 0
    with web.db.session() as s:
        t = s.get(Ticket, tid)
        assert t.status is TicketStatus.CLOSED and t.disposition == "reached_referred"


def test_manager_walk_report_excel_and_other_departments_refused(browser: Any,
                                                                  web: Site) -> None:
    page = _login(browser, web, "mgr_card")
    # the call search as a person types a phone number
    page.click("a[href='/calls']")
    page.fill("input[name=q]", "138 0013 0001")
    page.click("form.filters button[type=submit]")
    page.wait_for_selector(f"a.call-link[href='/calls/{web.seeded.card_call}']")
    page.goto(web.base + "/reports/monthly?month=2026-03")
    page.wait_for_selector("#figures")
    # the page's response rate is the raw rows' (a deliberately simple recount)
    with web.db.session() as s:
        due = s.execute(select(FollowupTask.status).where(
            FollowupTask.department_id == web.seeded.card_id,
            FollowupTask.due_date >= dt.date(2026, 3, 1),
            FollowupTask.due_date < dt.date(2026, 4, 1))).scalars().all()
    eligible = [x for x in due if x not in (TaskStatus.CANCELLED, TaskStatus.MERGED)]
    done = sum(1 for x in eligible if x is TaskStatus.DONE)
    assert page.inner_text("#response-rate") == f"{100 * done / len(eligible):.1f}%"
    page.click("a[href='/reports/monthly']")
    page.wait_for_selector("#figures")
    assert page.locator("svg.chart").count() == 2
    assert page.locator("#questions tr.suppressed").count() >= 1
    with page.expect_download() as info:
        page.click("#excel")
    path = info.value.path()
    wb = load_workbook(io.BytesIO(Path(path).read_bytes()))
    assert wb.sheetnames == ["概要", "各题结果", "近十二个月趋势", "得分最低的项目"]
    assert len(wb["近十二个月趋势"]._charts) == 1
    sd = web.seeded
    for url in (f"/calls/{sd.onc_call}", f"/patients/{sd.onc_patient}",
                f"/recordings/{sd.onc_recording}/audio",
                f"/reports/monthly?department={sd.onc_id}", "/worklist", "/users"):
        response = page.goto(web.base + url)
        assert response is not None and response.status in (403, 404), url
    page.goto(web.base + "/lang/en?next=/")
    assert "Today" in page.inner_text("h1")


def test_changed_recording_is_flagged_in_the_player(browser: Any, web: Site) -> None:
    path = web.seeded.recording_path
    data = bytearray(path.read_bytes())
    data[-10] ^= 0x55
    path.write_bytes(bytes(data))
    page = _login(browser, web, "sup_card")
    page.goto(f"{web.base}/calls/{web.seeded.card_call}")
    page.click("#play")
    page.wait_for_selector("#player[data-state=failed]", timeout=15000)
    assert "完整性" in page.inner_text("#player-status")
    assert len(_audit(web, "recording.integrity_failed")) == 1
    assert _audit(web, "recording.play") == []
    page.reload()
    assert page.locator("#recording-flagged").count() == 1
