"""The console over real HTTP (uvicorn on 127.0.0.1), on SQLite and PostgreSQL: logins and
lockout in the audit log, CSRF, department scope in every URL, playback audited, integrity
failures flagged, worklist, spot-check, report and Excel, bad input stores nothing."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from core.enums import TicketStatus
from core.store.models import (
    AuditEntry,
    CallAttempt,
    Patient,
    QaReview,
    SpotCheckItem,
    Ticket,
    User,
)
from tests.audit_key import TEST_AUDIT_KEY
from tests.unit.console.fixtures import Site, site_fixture  # noqa: F401 - the fixture
from tests.unit.console.seed import PASSWORD
from tests.unit.console.server import Client


def _audit(site: Site, action: str) -> list[AuditEntry]:
    with site.db.session() as s:
        return list(s.execute(select(AuditEntry).where(AuditEntry.action == action)
                              .order_by(AuditEntry.id)).scalars())


def _client(site: Site, user: str, password: str = PASSWORD) -> Client:
    c = Client(site.base)
    reply = c.login(user, password)
    assert reply.status == 200, reply.text[:500]
    return c


@pytest.mark.parametrize("user,sees,hidden", [
    ("sys", ["/users", "/definitions"], ["/worklist", "/calls", "/reports/monthly"]),
    ("admin", ["/calls", "/reports/monthly", "/definitions"], ["/users", "/worklist"]),
    ("mgr_card", ["/calls", "/reports/monthly"], ["/users", "/spotcheck", "/worklist"]),
    ("sup_card", ["/calls", "/spotcheck", "/worklist"], ["/users", "/reports/monthly"]),
    ("agent_card", ["/calls", "/worklist"], ["/users", "/spotcheck", "/reports/monthly"]),
])
def test_each_role_logs_in_sees_its_pages_and_is_refused_others(
        site: Site, user: str, sees: list[str], hidden: list[str]) -> None:
    c = _client(site, user)
    home = c.get("/")
    assert home.status == 200 and 'id="dashboard"' in home.text
    for path in sees:
        assert f'href="{path}"' in home.text
        assert c.get(path).status == 200, path
    for path in hidden:
        assert f'href="{path}"' not in home.text
        assert c.get(path).status == 403, path
    logins = _audit(site, "login.success")
    assert [e.actor for e in logins] == [f"user:{user}"]


def test_anonymous_is_sent_to_login(site: Site) -> None:
    reply = Client(site.base).get("/calls/1", follow=False)
    assert reply.status == 303 and reply.headers["location"].startswith("/login?next=")


def test_failed_logins_slow_the_guesser_alike_for_any_username_and_are_audited(
        site: Site) -> None:
    c = Client(site.base)
    c.get("/login")
    pages = {}
    for name in ("agent_card", "nobody"):
        for _ in range(3):  # max_failed_logins = 3 in the fixture
            assert c.post("/login", {"username": name, "password": "wrong"}).status == 401
        slowed = c.post("/login", {"username": name, "password": PASSWORD})
        assert slowed.status == 401 and "请几分钟后再试" in slowed.text
        pages[name] = slowed.text.replace(name, "NAME")
    assert pages["agent_card"] == pages["nobody"]  # nothing tells which user exists
    assert len(_audit(site, "login.failed")) == 6
    assert len(_audit(site, "login.throttled")) == 2
    assert _audit(site, "login.success") == []
    assert _audit(site, "login.failed")[-1].actor == "anonymous"


def test_post_without_the_csrf_token_is_refused_and_changes_nothing(site: Site) -> None:
    c = _client(site, "agent_card")
    reply = c.post(f"/worklist/{site.seeded.card_ticket}/claim", csrf=False)
    assert reply.status == 403
    forged = c.post(f"/worklist/{site.seeded.card_ticket}/claim",
                    [("csrf", "forged-token-forged-token")], csrf=False)
    assert forged.status == 403
    with site.db.session() as s:
        assert s.get(Ticket, site.seeded.card_ticket).status is TicketStatus.OPEN


def test_department_manager_never_sees_another_departments_urls(site: Site) -> None:
    c = _client(site, "mgr_card")
    sd = site.seeded
    assert c.get(f"/calls/{sd.card_call}").status == 200
    assert c.get(f"/patients/{sd.card_patient}").status == 200
    for path in (f"/calls/{sd.onc_call}", f"/patients/{sd.onc_patient}",
                 f"/recordings/{sd.onc_recording}/audio",
                 f"/recordings/{sd.onc_recording}/download",
                 f"/reports/monthly?department={sd.onc_id}",
                 f"/reports/monthly.xlsx?department={sd.onc_id}",
                 f"/reports/monthly/print?department={sd.onc_id}",
                 "/calls/99999999", "/calls/999999999999999999999"):
        assert c.get(path).status in (403, 404), path
    search = c.get("/calls")
    assert f"/calls/{sd.card_call}" in search.text and f"/calls/{sd.onc_call}" not in search.text
    forced = c.get(f"/calls?department_id={sd.onc_id}")
    assert f"/calls/{sd.onc_call}" not in forced.text
    dash = c.get("/")
    assert 'data-dept="CARD"' in dash.text and 'data-dept="ONC"' not in dash.text
    # nothing of ONC was read: no playback audited; every refusal and every view is
    assert _audit(site, "recording.play") == []
    assert [e.object_id for e in _audit(site, "call.view")] == [str(sd.card_call)]
    assert [e.object_id for e in _audit(site, "patient.view")] == [str(sd.card_patient)]
    refused = {(e.action, e.object_id) for e in _audit(site, "call.refused")
               + _audit(site, "patient.refused") + _audit(site, "recording.refused")
               + _audit(site, "report.refused")}
    assert {("call.refused", str(sd.onc_call)), ("patient.refused", str(sd.onc_patient)),
            ("recording.refused", str(sd.onc_recording)),
            ("report.refused", str(sd.onc_id))} <= refused
    assert all(e.actor == "user:mgr_card" for e in _audit(site, "call.refused"))


def test_playback_and_download_are_audit_events(site: Site) -> None:
    c = _client(site, "sup_card")
    rid = site.seeded.card_recording
    page = c.get(f"/calls/{site.seeded.card_call}")
    assert f'data-src="/recordings/{rid}/audio"' in page.text
    assert 'data-offset="1.5"' in page.text and "感觉好多了" in page.text
    audio = c.get(f"/recordings/{rid}/audio")
    assert audio.status == 200 and audio.body[:4] == b"RIFF"
    assert audio.body == site.seeded.recording_path.read_bytes()
    down = c.get(f"/recordings/{rid}/download")
    assert "attachment" in down.headers["content-disposition"]
    plays = _audit(site, "recording.play")
    downloads = _audit(site, "recording.download")
    assert [(e.actor, e.object_id) for e in plays] == [("user:sup_card", str(rid))]
    assert [(e.actor, e.object_id) for e in downloads] == [("user:sup_card", str(rid))]


def test_changed_recording_bytes_are_flagged_never_served(site: Site) -> None:
    c = _client(site, "sup_card")
    path = site.seeded.recording_path
    data = bytearray(path.read_bytes())
    data[200] ^= 0xFF
    path.write_bytes(bytes(data))
    reply = c.get(f"/recordings/{site.seeded.card_recording}/audio")
    assert reply.status == 409 and b"RIFF" not in reply.body
    assert len(_audit(site, "recording.integrity_failed")) == 1
    assert _audit(site, "recording.play") == []
    page = c.get(f"/calls/{site.seeded.card_call}")
    assert 'id="recording-flagged"' in page.text and 'id="player"' not in page.text


def test_worklist_claim_call_and_close(site: Site) -> None:
    c = _client(site, "agent_card")
    tid = site.seeded.card_ticket
    page = c.get("/worklist")
    assert f'data-ticket="{tid}"' in page.text
    assert f'data-ticket="{site.seeded.onc_ticket}"' not in page.text
    assert c.post(f"/worklist/{site.seeded.onc_ticket}/claim").status == 404
    assert c.post(f"/worklist/{tid}/claim").status == 200
    assert c.post(f"/worklist/{tid}/claim").status == 400  # already claimed
    refused = c.post(f"/worklist/{tid}/call", {"extension": "0000"})
    assert refused.status == 502 and "拨号失败" in refused.text
    assert c.post(f"/worklist/{tid}/call", {"extension": "20 01"}).status == 400
    rang = c.post(f"/worklist/{tid}/call", {"extension": "2001"})
    assert "ringing 2001" in rang.text
    assert site.click.calls == [("2001", "+8613800130001", tid)]
    noted = c.post(f"/worklist/{tid}/note", {"notes": "患者说下午再打"})
    assert noted.status == 200 and "患者说下午再打" in noted.text
    assert c.post(f"/worklist/{tid}/note", {"notes": ""}).status == 400
    done = c.post(f"/worklist/{tid}/close", {"disposition": "reached_referred",
                                             "notes": "转诊至心内科门诊"})
    assert done.status == 200
    with site.db.session() as s:
        t = s.get(Ticket, tid)
        assert t.status is TicketStatus.CLOSED and t.disposition == "reached_referred"
        assert "转诊至心内科门诊" in (t.notes or "") and "患者说下午再打" in (t.notes or "")
        assert t.assigned_user_id == site.seeded.users["agent_card"]
    assert [e.action for e in _audit(site, "ticket.close")] == ["ticket.close"]


@pytest.mark.parametrize("form", [
    {"disposition": "reached_well", "notes": "<script>alert(1)</script>"},
    {"disposition": "reached_well", "notes": "x" * 2001},
    {"disposition": "not-a-disposition", "notes": "ok"},
    {"disposition": "reached_well", "notes": "<img src=x onerror=alert(1)>"},
])
def test_bad_close_input_is_rejected_and_nothing_is_stored(site: Site,
                                                           form: dict[str, str]) -> None:
    c = _client(site, "agent_card")
    tid = site.seeded.card_ticket
    c.get("/worklist")
    assert c.post(f"/worklist/{tid}/claim").status == 200
    reply = c.post(f"/worklist/{tid}/close", form)
    assert reply.status == 400 and 'data-code="invalid_input"' in reply.text
    assert "<script>alert" not in reply.text
    with site.db.session() as s:
        t = s.get(Ticket, tid)
        assert t.status is TicketStatus.CLAIMED and t.notes is None and t.disposition is None
    assert _audit(site, "ticket.close") == []


def test_spot_check_sample_review_and_progress(site: Site) -> None:
    c = _client(site, "sup_card")
    c.get("/spotcheck")
    drawn = c.post("/spotcheck", {"department_id": str(site.seeded.card_id), "script_id": "",
                                  "day": "2026-03-10", "rate_percent": "100"})
    assert drawn.status == 200 and 'data-size="1"' in drawn.text
    assert 'data-reviewed="0"' in drawn.text
    with site.db.session() as s:
        item = s.execute(select(SpotCheckItem)).scalar_one()
    assert item.attempt_id == site.seeded.card_call
    review_page = c.get(f"/spotcheck/items/{item.id}")
    assert 'id="qa-form"' in review_page.text and 'id="player"' in review_page.text
    bad = c.post(f"/spotcheck/items/{item.id}",
                 [("score_identity", "abc"), ("score_script", "5"), ("score_clarity", "5"),
                  ("score_transcript", "5")])
    assert bad.status == 400
    wrong_flag = c.post(f"/spotcheck/items/{item.id}",
                        [("score_identity", "4"), ("score_script", "5"), ("score_clarity", "3"),
                         ("score_transcript", "2"), ("flags", "made_up")])
    assert wrong_flag.status == 400
    with site.db.session() as s:
        assert s.execute(select(func.count()).select_from(QaReview)).scalar_one() == 0
        assert s.get(SpotCheckItem, item.id).reviewed_at is None
    ok = c.post(f"/spotcheck/items/{item.id}",
                [("score_identity", "4"), ("score_script", "5"), ("score_clarity", "3"),
                 ("score_transcript", "2"), ("flags", "transcript_wrong"),
                 ("comment", "转写有误")])
    assert ok.status == 200 and 'data-reviewed="1"' in ok.text
    with site.db.session() as s:
        review = s.execute(select(QaReview)).scalar_one()
        assert review.scores == {"identity": 4, "script": 5, "clarity": 3, "transcript": 2}
        assert review.flags == ["transcript_wrong"]
    other = c.post("/spotcheck", {"department_id": str(site.seeded.onc_id), "script_id": "",
                                  "day": "2026-03-10", "rate_percent": "100"})
    assert other.status == 400  # not the supervisor's department


def test_monthly_report_page_excel_and_print(site: Site) -> None:
    c = _client(site, "mgr_card")
    url = f"/reports/monthly?department={site.seeded.card_id}&month=2026-03"
    page = c.get(url)
    assert page.status == 200 and "<svg" in page.text
    # 6 CARD satisfaction tasks due this month (5 done, 1 failed) + the walk-through call
    assert 'id="response-rate">85.7%' in page.text
    assert 'data-q="inpatient-satisfaction/food" class="suppressed"' in page.text
    # questions by their wording in the reader's language, not their ids
    assert ">您对这次住院总体满意吗？" in page.text
    assert ">inpatient-satisfaction/overall<" not in page.text
    # yes/no as the share of "yes", in percent (3 of 5 this month)
    assert "60.0%" in page.text
    # the inpatient template's satisfaction index, over the five calls that answered it
    import re
    assert re.search(r'id="satisfaction">\d+\.\d <small>\(95% 置信区间 [\d.]+–[\d.]+, 5 通电话',
                     page.text), page.text[page.text.index('id="satisfaction"'):][:200]
    # no month given: the last finished one (the clock is in 2026-03)
    default = c.get(f"/reports/monthly?department={site.seeded.card_id}")
    assert 'name="month" value="2026-02"' in default.text
    xlsx = c.get(f"/reports/monthly.xlsx?department={site.seeded.card_id}&month=2026-03")
    assert xlsx.status == 200
    wb = load_workbook(io.BytesIO(xlsx.body))
    [export] = _audit(site, "report.export")
    assert export.actor == "user:mgr_card" and export.detail == {"month": "2026-03",
                                                                 "format": "xlsx"}
    # a zh session's workbook: Chinese sheets and headers, a title block on every sheet,
    # the header row frozen and filtered, shares as 0.0 % numbers, native charts
    assert wb.sheetnames == ["概要", "各题结果", "近十二个月趋势", "得分最低的项目"]
    for ws in wb.worksheets:
        assert ws["A1"].value.startswith("示范医院 · 月度满意度报告"), ws.title
        block = {r[0]: r[1] for r in ws.iter_rows(min_row=2, max_row=5, values_only=True)}
        assert block["科室"] == "CARD 心内科" and block["月份"] == "2026-03"
        assert block["生成时间"].endswith("UTC+8") and block["生成人"]
        header = ws.freeze_panes and int(ws.freeze_panes[1:]) - 1
        assert header and ws.auto_filter.ref.startswith(f"A{header}:"), ws.title
    summary = _sheet_rows(wb["概要"])
    assert summary["应随访"]["数值"] == 7 and summary["已应答"]["数值"] == 6
    rate = summary["应答率"]
    assert rate["数值"] == pytest.approx(6 / 7) and rate["定义"] == "应答率 = 已应答 ÷ 应随访"
    assert _cell(wb["概要"], "应答率", "数值").number_format == "0.0%"
    questions = _sheet_rows(wb["各题结果"])
    assert questions["您对这次住院总体满意吗？"]["题型"] == "评分题"
    overall = questions["您对这次住院总体满意吗？"]
    assert overall["样本数"] == 5 and overall["95% 置信区间下限"] <= overall["均值 / 是的比例"] \
        <= overall["95% 置信区间上限"]
    shares = [r for r in questions.values() if r["题型"] == "是非题"]
    assert any(r["均值 / 是的比例"] == pytest.approx(0.6) for r in shares)  # 3 of 5 said yes
    yes_cell = next(c for c in wb["各题结果"]["B"] if c.value == "是非题")
    assert wb["各题结果"].cell(yes_cell.row, 4).number_format == "0.0%"
    assert any(r["均值 / 是的比例"] == "样本过少，不予显示" for r in questions.values())
    assert len(wb["各题结果"]._charts) == 2 and len(wb["近十二个月趋势"]._charts) == 1
    assert list(_sheet_rows(wb["近十二个月趋势"])) == [
        *(f"2025-{m:02d}" for m in range(4, 13)), "2026-01", "2026-02", "2026-03"]
    printable = c.get(f"/reports/monthly/print?department={site.seeded.card_id}&month=2026-03")
    assert printable.status == 200 and 'class="printable"' in printable.text
    # what a department head files: the title block, the definitions, a signature line
    assert "示范医院 · 生成时间 " in printable.text and "UTC+8 · 生成人 " in printable.text
    assert "应答率 = 已应答 ÷ 应随访" in printable.text
    assert 'id="signature">科室负责人签字：' in printable.text


def _header_row(ws: Any) -> int:
    return int(ws.freeze_panes[1:]) - 1


def _sheet_rows(ws: Any) -> dict[Any, dict[str, Any]]:
    """A sheet's table under its frozen header: first column -> {header: value}."""
    header = _header_row(ws)
    names = [c.value for c in ws[header]]
    return {row[0]: dict(zip(names, row, strict=False))
            for row in ws.iter_rows(min_row=header + 1, values_only=True)}


def _cell(ws: Any, first: str, column: str) -> Any:
    header = _header_row(ws)
    col = [c.value for c in ws[header]].index(column) + 1
    row = next(c.row for c in ws["A"] if c.row > header and c.value == first)
    return ws.cell(row, col)


def test_report_figures_drill_down_to_the_tasks_and_calls_behind_them(site: Site) -> None:
    import html
    import re

    c = _client(site, "mgr_card")
    page = c.get(f"/reports/monthly?department={site.seeded.card_id}&month=2026-03").text
    links = {html.unescape(m.group(2)): html.unescape(m.group(1)) for m in re.finditer(
        r'<a class="drill" href="([^"]+)">([^<]+)</a>', page)}
    # "responded 6": the six tasks due in March that were completed
    done = c.get(links["6"]).text
    assert done.count('<tr data-task=') == 6
    # the share of "yes" (60.0 %: 3 of 5) lists exactly the three calls that said yes
    said_yes = c.get(links["60.0%"])
    assert said_yes.status == 200 and said_yes.text.count('class="call-link"') == 3
    assert 'id="drill">回答了：' in said_yes.text and "= 是" in said_yes.text
    # a question's name lists every call that answered it (5)
    recommend = next(url for url in links.values() if "recommend" in url and "answer=" not in url)
    assert c.get(recommend).text.count('class="call-link"') == 5
    # scoped: the same drill-down into another department shows nothing of it
    other = links["60.0%"].replace(f"department_id={site.seeded.card_id}",
                                   f"department_id={site.seeded.onc_id}")
    assert 'class="call-link"' not in c.get(other).text
    assert c.get("/calls?question=no-slash").status == 400


def test_hospital_wide_ranking_only_for_those_who_see_every_department(site: Site) -> None:
    url = f"/reports/monthly?department={site.seeded.card_id}&month=2026-03"
    mgr = _client(site, "mgr_card").get(url).text
    assert 'id="ranking"' not in mgr and "肿瘤科" not in mgr
    admin = _client(site, "admin").get(url).text
    assert 'id="ranking"' in admin
    rows = admin[admin.index('id="ranking"'):]
    card, onc = rows.index('data-department="CARD"'), rows.index('data-department="ONC"')
    # CARD's 85.7 % is its own report's figure; ONC's month is too small to show a rate,
    # so it ranks after every department with one
    assert card < onc and "85.7%" in rows[card:onc]
    xlsx = _client(site, "admin").get(url.replace("monthly?", "monthly.xlsx?"))
    ranking = _sheet_rows(load_workbook(io.BytesIO(xlsx.body))["全院科室应答率排名"])
    assert ranking["心内科"]["应答率"] == pytest.approx(6 / 7)
    assert list(ranking) == ["心内科", "肿瘤科"]


def test_departments_are_named_not_coded_or_numbered(site: Site) -> None:
    import re

    calls = _client(site, "mgr_card").get("/calls").text
    assert '<td title="CARD">心内科</td>' in calls
    assert f'<option value="{site.seeded.card_id}" >心内科</option>' in calls
    users = _client(site, "sys").get("/users").text
    rows = re.findall(r'<tr data-user="mgr_card">.*?</tr>', users, re.S)
    assert rows and "<td>心内科</td>" in rows[0]
    assert "<td>全部科室</td>" in users  # a hospital-wide account
    english = _client(site, "mgr_card")
    english.get("/lang/en?next=/")
    assert '<td title="CARD">Cardiology</td>' in english.get("/calls").text


def test_bad_report_parameters_are_refused(site: Site) -> None:
    c = _client(site, "admin")
    assert c.get("/reports/monthly?month=2026-13").status == 400
    assert c.get("/reports/monthly?department=abc").status == 400
    assert c.get("/calls?date_from=yesterday").status == 400


def test_sysadmin_adds_a_user_and_grants_a_temporary_right(site: Site) -> None:
    c = _client(site, "sys")
    c.get("/users")
    made = c.post("/users", {"username": "nurse_li", "display_name": "李护士",
                             "password": "long-enough-pw", "role": "agent",
                             "department_id": str(site.seeded.onc_id)})
    assert made.status == 200 and 'data-user="nurse_li"' in made.text
    bad = c.post("/users", {"username": "x<script>", "display_name": "<b>bad</b>",
                            "password": "long-enough-pw", "role": "agent"})
    assert bad.status == 400
    weak = c.post("/users", {"username": "weakling", "display_name": "W",
                             "password": "short", "role": "agent"})
    assert weak.status == 400
    with site.db.session() as s:
        names = set(s.execute(select(User.username)).scalars())
        nurse = s.execute(select(User).where(User.username == "nurse_li")).scalar_one()
    assert "weakling" not in names and "x<script>" not in names
    granted = c.post(f"/users/{nurse.id}/grant", {"role": "agent",
                                                   "department_id": str(site.seeded.card_id),
                                                   "days": "3"})
    assert granted.status == 200
    nurse_client = _client(site, "nurse_li", "long-enough-pw")
    wl = nurse_client.get("/worklist")
    assert f'data-ticket="{site.seeded.onc_ticket}"' in wl.text
    assert f'data-ticket="{site.seeded.card_ticket}"' in wl.text  # the granted department
    assert len(_audit(site, "user.create")) == 1 and len(_audit(site, "user.grant")) == 1


def test_a_grant_reaches_only_its_own_permissions_in_its_own_department(site: Site) -> None:
    """A CARD manager granted "agent in ONC" works ONC's tickets and calls, and still
    never reads ONC's reports, Excel or print view; the sysadmin can grant no one admin,
    nothing without a department, and nothing to themselves."""
    sd = site.seeded
    sysadmin = _client(site, "sys")
    sysadmin.get("/users")
    mgr = sd.users["mgr_card"]
    assert sysadmin.post(f"/users/{mgr}/grant", {"role": "agent", "department_id":
                                                 str(sd.onc_id), "days": "3"}).status == 200
    for form in ({"role": "agent", "department_id": "", "days": "3"},
                 {"role": "admin", "department_id": str(sd.onc_id), "days": "3"}):
        assert sysadmin.post(f"/users/{mgr}/grant", form).status == 400, form
    assert sysadmin.post(f"/users/{sd.users['sys']}/grant",
                         {"role": "supervisor", "department_id": str(sd.onc_id),
                          "days": "3"}).status == 400
    c = _client(site, "mgr_card")
    assert c.get(f"/calls/{sd.onc_call}").status == 200  # as an agent in ONC
    assert f'data-ticket="{sd.onc_ticket}"' in c.get("/worklist").text
    for path in (f"/reports/monthly?department={sd.onc_id}",
                 f"/reports/monthly.xlsx?department={sd.onc_id}",
                 f"/reports/monthly/print?department={sd.onc_id}"):
        assert c.get(path).status in (403, 404), path
    report = c.get("/reports/monthly")
    assert report.status == 200 and "ONC" not in report.text and "肿瘤" not in report.text
    assert _client(site, "sys").get(f"/recordings/{sd.onc_recording}/audio").status == 403


def test_language_switch(site: Site) -> None:
    c = _client(site, "admin")
    assert "今日总览" in c.get("/").text
    assert "Today" in c.get("/lang/en?next=/").text
    assert c.get("/lang/en?next=//evil.example", follow=False).headers["location"] == "/"


def test_definitions_viewer_shows_validation(site: Site) -> None:
    c = _client(site, "admin")
    page = c.get("/definitions")
    assert 'class="definition valid" data-name="demo/v1/en-US.yaml"' in page.text
    assert 'class="definition invalid" data-name="broken.yaml"' in page.text


def test_oversized_bodies_and_uploads_are_refused_and_pages_carry_security_headers(
        site: Site) -> None:
    c = _client(site, "agent_card")
    page = c.get("/worklist")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    tid = site.seeded.card_ticket
    huge = c.request("POST", f"/worklist/{tid}/note", raw=b"notes=" + b"x" * (300 * 1024),
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert huge.status == 413
    boundary = "----b"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n"
            f"{c.csrf}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"notes\"; "
            f"filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
            f"--{boundary}--\r\n").encode()
    upload = c.request("POST", f"/worklist/{tid}/note", raw=body,
                       headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert upload.status == 400
    with site.db.session() as s:
        assert s.get(Ticket, tid).notes is None


def test_logout_and_deactivation_end_sessions_at_once(site: Site) -> None:
    c = _client(site, "agent_card")
    stolen = Client(site.base)
    for cookie in c.jar:
        stolen.jar.set_cookie(cookie)
    assert stolen.get("/worklist").status == 200
    c.get("/")
    assert c.post("/logout").status == 200
    # the copied cookie is signed and unexpired, but its session was revoked
    replay = stolen.get("/worklist", follow=False)
    assert replay.status == 303 and replay.headers["location"].startswith("/login")
    assert [e.actor for e in _audit(site, "logout")] == ["user:agent_card"]

    agent = _client(site, "agent_card")
    assert agent.get("/worklist").status == 200
    admin = _client(site, "sys")
    admin.get("/users")
    uid = site.seeded.users["agent_card"]
    assert admin.post(f"/users/{uid}/active", {"active": "0"}).status == 200
    assert agent.get("/worklist", follow=False).status == 303


def test_task_search_lists_tasks_in_scope_with_filters(site: Site) -> None:
    c = _client(site, "mgr_card")
    page = c.get("/tasks")
    assert page.status == 200 and 'id="tasks"' in page.text
    assert page.text.count("data-task=") == 19  # CARD: the walk-through + 3 x 6 survey tasks
    failed = c.get("/tasks?outcome=failed")
    assert failed.text.count("data-task=") == 3
    by_name = c.get("/tasks?q=" + quote("王芳"))
    assert by_name.text.count("data-task=") == 1
    other = c.get("/tasks?q=" + quote("李雷"))  # the ONC patient: not in the manager's scope
    assert 'id="tasks"' not in other.text
    assert c.get("/tasks?outcome=bogus").text.count("data-task=") == 0
    dated = c.get("/tasks?date_from=2026-03-01&date_to=2026-03-31")
    assert dated.text.count("data-task=") == 7


def test_admin_places_a_legal_hold_that_retention_respects(site: Site) -> None:
    import datetime as dt

    from core.audit import AuditLog
    from core.store.models import Recording
    from recordings.retention import purge_expired

    rid = site.seeded.card_recording
    mgr = _client(site, "mgr_card")
    page = mgr.get(f"/calls/{site.seeded.card_call}")
    assert 'id="hold-form"' not in page.text
    assert mgr.post(f"/recordings/{rid}/hold", {"hold": "1", "reason": "x"}).status == 403
    c = _client(site, "admin")
    c.get(f"/calls/{site.seeded.card_call}")
    assert c.post(f"/recordings/{rid}/hold", {"hold": "1", "reason": ""}).status == 400
    assert c.post(f"/recordings/{rid}/hold", {"hold": "1",
                                              "reason": "<script>x</script>"}).status == 400
    held = c.post(f"/recordings/{rid}/hold", {"hold": "1", "reason": "投诉调查 2026-017"})
    assert held.status == 200 and 'data-held="1"' in held.text
    [event] = _audit(site, "recording.legal_hold")
    assert event.detail["reason"] == "投诉调查 2026-017" and event.actor == "user:admin"
    site.clock.advance(dt.timedelta(days=200))
    with site.db.session() as s:
        audit = AuditLog(site.clock, TEST_AUDIT_KEY)
        report = purge_expired(s, site.store.root, site.clock, audit, 180)
    # the ONC recording goes; CARD's call is held, with its voice answer's clip
    assert report.held == 2 and report.purged == 1
    with site.db.session() as s:
        assert s.get(Recording, rid).purged_at is None
        assert s.get(Recording, site.seeded.card_clip).purged_at is None
    assert site.seeded.recording_path.exists()
    assert c.get("/", follow=False).status == 303  # 200 days later the session has expired
    c = _client(site, "admin")
    c.get(f"/calls/{site.seeded.card_call}")
    released = c.post(f"/recordings/{rid}/hold", {"hold": "0"})
    assert 'data-held="0"' in released.text
    assert len(_audit(site, "recording.legal_hold_released")) == 1


def _card_patient(site: Site, rename: str | None = None) -> tuple[str, str]:
    """The seeded CARD patient's (phone, MRN), renamed first when `rename` is given."""
    with site.db.session() as s:
        p = s.get(Patient, site.seeded.card_patient)
        assert p is not None and p.phone is not None
        if rename is not None:
            p.name = rename
        return p.phone, p.mrn


def test_patient_pages_are_never_cached_and_a_bidi_override_cannot_flip_them(
        site: Site) -> None:
    sd = site.seeded
    _, mrn = _card_patient(site, rename="王\u202eFANG")
    c = _client(site, "mgr_card")
    for path in (f"/patients/{sd.card_patient}", f"/calls/{sd.card_call}", "/calls", "/"):
        reply = c.get(path)
        assert reply.status == 200, path
        assert reply.headers["cache-control"] == "no-store", path
        assert "\u202e" not in reply.text, path
    page = c.get(f"/patients/{sd.card_patient}").text
    assert "王\ufffdFANG" in page and mrn in page
    static = c.get("/static/console.css")
    assert static.status == 200 and "no-store" not in static.headers.get("cache-control", "")


def test_call_search_takes_a_phone_as_people_type_it_and_an_mrn_in_any_case(
        site: Site) -> None:
    sd = site.seeded
    phone, mrn = _card_patient(site)
    assert phone == "+8613800130001" and mrn == "MRN0001"
    c = _client(site, "mgr_card")
    for typed in ("138 0013 0001", "0086-138-0013-0001", "13800130001", "+86 138 0013 0001",
                  "mrn0001", " MRN0001 ", "mrn000", "MRN0"):  # an MRN's start, any case
        page = c.get(f"/calls?q={quote(typed)}")
        assert page.status == 200, typed
        assert f"/calls/{sd.card_call}" in page.text, typed
    for other in ("13800130009", "MRN0002", "RN0001", "mr"):  # not its start; too short
        assert f"/calls/{sd.card_call}" not in c.get(f"/calls?q={quote(other)}").text, other


def test_worklist_finds_a_patients_tickets_as_people_type_them(site: Site) -> None:
    tid = site.seeded.card_ticket
    c = _client(site, "agent_card")
    for typed in ("138 0013 0001", "mrn0001", "王芳"):
        page = c.get(f"/worklist?q={quote(typed)}")
        assert page.status == 200 and f'data-ticket="{tid}"' in page.text, typed
        assert f'value="{typed}"' in page.text  # the search stays in the box
    assert f'data-ticket="{tid}"' not in c.get("/worklist?q=13800130009").text


def test_times_are_shown_in_the_hospital_zone(site: Site) -> None:
    sd = site.seeded
    with site.db.session() as s:
        attempt = s.get(CallAttempt, sd.card_call)
        assert attempt is not None
        at = attempt.created_at
    local = at.astimezone(ZoneInfo("Asia/Shanghai"))
    c = _client(site, "mgr_card")
    page = c.get(f"/calls/{sd.card_call}").text
    assert f"{local:%Y-%m-%d %H:%M:%S} UTC+8" in page
    assert f"{at.astimezone(dt.UTC):%H:%M:%S} UTC<" not in page
    listing = c.get("/calls").text
    assert f"{local:%Y-%m-%d %H:%M} UTC+8" in listing


def test_calls_export_as_csv_is_scoped_audited_and_cannot_run_a_formula(site: Site) -> None:
    sd = site.seeded
    _, mrn = _card_patient(site, rename='=HYPERLINK("http://x","y")')
    c = _client(site, "mgr_card")
    reply = c.get("/calls.csv?q=" + quote(mrn))
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/csv")
    assert reply.headers["cache-control"] == "no-store"
    assert reply.body.startswith("\ufeff".encode())  # Excel reads the Chinese headers
    rows = list(csv.reader(io.StringIO(reply.body.decode("utf-8-sig"))))
    assert rows[0][:3] == ["通话编号", "时间", "科室"]
    [row] = [r for r in rows[1:] if r[0] == str(sd.card_call)]
    assert row[3] == '\'=HYPERLINK("http://x","y")'  # text, not a formula
    assert row[1].endswith("UTC+8")
    everything = c.get("/calls.csv").body.decode("utf-8-sig")
    assert f"\r\n{sd.onc_call}," not in everything  # another department's call
    first, _ = _audit(site, "calls.export")
    assert first.actor == "user:mgr_card" and first.detail["rows"] == 1
    assert row[7:] == ["已接听", "已完成"]  # outcomes in words, not stored values


def test_tasks_and_tickets_export_as_csv_scoped_audited_in_words(site: Site) -> None:
    sd = site.seeded
    _card_patient(site, rename='@SUM(1+1)*cmd|"/c calc"!A0')
    c = _client(site, "mgr_card")
    tasks = list(csv.reader(io.StringIO(c.get("/tasks.csv").body.decode("utf-8-sig"))))
    assert tasks[0][:4] == ["任务编号", "应随访日", "科室", "患者"]
    assert {r[2] for r in tasks[1:]} == {"心内科"}  # only the manager's department, by name
    mine = [r for r in tasks[1:] if r[3].endswith('"/c calc"!A0')]
    assert mine and all(r[3].startswith("'@") for r in mine)  # text, never a formula
    assert "done" not in {r[6] for r in tasks[1:]} and "已完成" in {r[6] for r in tasks[1:]}
    [task_audit] = _audit(site, "tasks.export")
    assert task_audit.actor == "user:mgr_card" and task_audit.detail["rows"] == len(tasks) - 1
    agent = _client(site, "agent_card")
    reply = agent.get("/worklist.csv?q=" + quote("138 0013 0001"))
    tickets = list(csv.reader(io.StringIO(reply.body.decode("utf-8-sig"))))
    assert tickets[0][:2] == ["工单编号", "时间"]
    [ticket] = tickets[1:]
    assert ticket[0] == str(sd.card_ticket) and ticket[5:8] == ["警示症状", "高", "待处理"]
    assert str(sd.onc_ticket) not in {r[0] for r in tickets}
    [ticket_audit] = _audit(site, "tickets.export")
    assert ticket_audit.actor == "user:agent_card" and ticket_audit.detail["rows"] == 1
    # the same three as Excel: one sheet, the header frozen and filtered, same cells
    for url, first in (("/tasks.xlsx", "任务编号"), ("/calls.xlsx", "通话编号")):
        reply = c.get(url)
        assert reply.headers["content-type"].startswith("application/vnd.openxmlformats")
        ws = load_workbook(io.BytesIO(reply.body)).active
        assert ws["A1"].value == first and ws.freeze_panes == "A2" and ws.auto_filter.ref
        cells = [str(v) for row in ws.iter_rows(min_row=2, values_only=True) for v in row]
        assert not any(v.startswith(("=", "@", "+", "-")) for v in cells)  # never a formula
        assert any(v.startswith("'@SUM") for v in cells) or url == "/calls.xlsx"
    sheet = load_workbook(io.BytesIO(agent.get("/worklist.xlsx").body)).active
    assert sheet.title == "工单" and sheet["A2"].value == sd.card_ticket
    assert [e.detail["format"] for e in _audit(site, "tasks.export")] == ["csv", "xlsx"]


def test_a_call_that_left_a_voicemail_message_says_so(site: Site) -> None:
    from sqlalchemy import update

    from core.enums import DialOutcome

    c = _client(site, "sup_card")
    call = site.seeded.card_call
    assert 'id="voicemail-left"' not in c.get(f"/calls/{call}").text
    with site.db.session() as s:
        s.execute(update(CallAttempt).where(CallAttempt.id == call).values(
            dial_outcome=DialOutcome.MACHINE, script_outcome=None, voicemail_left=True))
    page = c.get(f"/calls/{call}").text
    assert "答录机" in page and '<span id="voicemail-left">已留回电留言</span>' in page
