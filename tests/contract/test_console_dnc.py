"""The do-not-call page: agents list and add, only supervisors and admins remove (with a
reason), a CSV import reports each bad line; the patient page says whether the patient's
numbers are on the list; every change is audited as the signed-in user."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from core.audit import AuditLog
from core.do_not_call import add
from core.enums import DncReason, DncSource
from core.store.models import AuditEntry, DoNotCall, Patient
from tests.audit_key import TEST_AUDIT_KEY
from tests.contract.test_console_web import _client
from tests.unit.console.fixtures import Site, site_fixture  # noqa: F401 - the fixture
from tests.unit.console.server import Client, Reply


def _audit(site: Site) -> AuditLog:
    return AuditLog(site.clock, TEST_AUDIT_KEY)


def _entries(site: Site) -> list[tuple[str, DncReason, DncSource, str, str | None]]:
    with site.db.session() as s:
        return [(e.phone, e.reason, e.source, e.added_by, e.removed_by) for e in s.execute(
            select(DoNotCall).order_by(DoNotCall.id)).scalars()]


def _audited(site: Site) -> list[tuple[str, str]]:
    with site.db.session() as s:
        return [(a, who) for a, who in s.execute(
            select(AuditEntry.action, AuditEntry.actor)
            .where(AuditEntry.action.like("dnc.%")).order_by(AuditEntry.id))]


def _phone(site: Site, patient_id: int) -> str:
    with site.db.session() as s:
        p = s.get(Patient, patient_id)
        assert p is not None and p.phone
        return p.phone


def _upload(c: Client, data: bytes, csrf: str | None = None) -> Reply:
    boundary = "----dnc-test"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n"
            f"{c.csrf if csrf is None else csrf}\r\n--{boundary}\r\nContent-Disposition: "
            f"form-data; name=\"file\"; filename=\"list.csv\"\r\nContent-Type: text/csv"
            f"\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return c.request("POST", "/dnc/import", raw=body,
                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})


def test_an_agent_adds_a_number_and_the_patient_page_shows_it(site: Site) -> None:
    agent = _client(site, "agent_card")
    home = agent.get("/")
    assert 'href="/dnc"' in home.text
    phone = _phone(site, site.seeded.card_patient)
    national = phone.removeprefix("+86")
    before = agent.get(f"/patients/{site.seeded.card_patient}")
    assert 'id="patient-dnc"' in before.text and "不在免打扰名单上" in before.text
    agent.get("/dnc")
    done = agent.post("/dnc", {"phone": f"{national[:3]} {national[3:7]} {national[7:]}",
                               "reason": "patient_request", "note": "本人来电要求",
                               "expires": ""})
    assert done.status == 200 and "号码已加入免打扰名单" in done.text
    row = re.search(r'<tr data-entry="\d+">.*?</tr>', done.text, re.S)
    assert row is not None and phone in row.group(0) and "患者要求" in row.group(0)
    assert "控制台" in row.group(0) and "AGENT_CARD" in row.group(0)  # display name
    assert "2026-03-10 09:00 UTC+8" in row.group(0)  # the fake clock's 01:00 UTC, local
    assert "dnc-remove" not in done.text  # an agent may not remove
    again = agent.post("/dnc", {"phone": phone, "reason": "patient_request"})
    assert "已因同一原因在名单上" in again.text
    page = agent.get(f"/patients/{site.seeded.card_patient}")
    shown = re.search(r'<dd id="patient-dnc">(.*?)</dd>', page.text, re.S)
    assert shown is not None
    assert phone in shown.group(1) and "患者要求" in shown.group(1)
    assert "自 2026-03-10 09:00 UTC+8 起" in shown.group(1)
    assert _entries(site) == [(phone, DncReason.PATIENT_REQUEST, DncSource.CONSOLE,
                               "user:agent_card", None)]
    assert ("dnc.add", "user:agent_card") in _audited(site)


def test_bad_input_is_refused_and_nothing_is_stored(site: Site) -> None:
    agent = _client(site, "agent_card")
    agent.get("/dnc")
    for form, field in (({"phone": "12345", "reason": "other"}, "phone"),
                        ({"phone": "<b>13800138000</b>", "reason": "other"}, "phone"),
                        ({"phone": "13800138000", "reason": "angry"}, "reason"),
                        ({"phone": "13800138000", "reason": "other", "expires": "2026-03-10"},
                         "expires"),
                        ({"phone": "13800138000", "reason": "other", "expires": "soon"},
                         "expires")):
        reply = agent.post("/dnc", form)
        assert reply.status == 400 and f"{field}:" in reply.text, form
    assert agent.post("/dnc", {"phone": "13800138000", "reason": "other"},
                      csrf=False).status == 403
    assert _entries(site) == []


def test_only_supervisors_and_admins_remove_with_a_reason(site: Site) -> None:
    with site.db.session() as s:
        entry = add(s, _audit(site), phone="+8613800138000", reason=DncReason.WRONG_NUMBER,
                    source=DncSource.TICKET, actor="user:agent_card", now=site.clock.now())
        entry_id = entry.id
    agent = _client(site, "agent_card")
    agent.get("/dnc")
    assert agent.post(f"/dnc/{entry_id}/remove", {"why": "mistake"}).status == 403
    sup = _client(site, "sup_card")
    page = sup.get("/dnc")
    assert "dnc-remove" in page.text and "号码有误" in page.text
    assert sup.post(f"/dnc/{entry_id}/remove", {"why": " "}).status == 400
    assert sup.post(f"/dnc/{entry_id + 99}/remove", {"why": "x"}).status == 404
    done = sup.post(f"/dnc/{entry_id}/remove", {"why": "HIS corrected the number"})
    assert "号码已移出免打扰名单" in done.text and 'id="dnc-empty"' in done.text
    again = sup.post(f"/dnc/{entry_id}/remove", {"why": "twice"})
    assert "该条目已被移除" in again.text
    everything = sup.get("/dnc?all=1")
    assert "已移除" in everything.text and "SUP_CARD" in everything.text
    assert _entries(site)[0][4] == "user:sup_card"
    assert _audited(site) == [("dnc.add", "user:agent_card"), ("dnc.remove", "user:sup_card")]
    with site.db.session() as s:
        why = s.execute(select(AuditEntry.detail).where(AuditEntry.action == "dnc.remove")
                        ).scalar_one()
    assert why["why"] == "HIS corrected the number"


def test_who_holds_the_list(site: Site) -> None:
    for user in ("mgr_card", "sys"):
        c = _client(site, user)
        assert 'href="/dnc"' not in c.get("/").text
        assert c.get("/dnc").status == 403
    for user in ("admin", "sup_card", "agent_card"):
        c = _client(site, user)
        assert 'href="/dnc"' in c.get("/").text and c.get("/dnc").status == 200


def test_a_linked_patient_is_named_only_to_who_may_see_them(site: Site) -> None:
    with site.db.session() as s:
        add(s, _audit(site), phone=_phone(site, site.seeded.onc_patient),
            reason=DncReason.PATIENT_REQUEST, source=DncSource.TICKET, actor="user:admin",
            now=site.clock.now(), patient_id=site.seeded.onc_patient)
    agent_page = _client(site, "agent_card").get("/dnc").text
    admin_page = _client(site, "admin").get("/dnc").text
    assert _phone(site, site.seeded.onc_patient) in agent_page and "李雷" not in agent_page
    assert f'href="/patients/{site.seeded.onc_patient}">李雷</a>' in admin_page


def test_a_csv_import_reports_each_bad_line_and_adds_the_rest(site: Site) -> None:
    agent = _client(site, "agent_card")
    agent.get("/dnc")
    text = ("phone,reason,note,expires\n13800138001,,患者本人要求,\n12345,other,,\n"
            "13800138002,angry,,\n13800138003,wrong_number,,2026-13-01\n"
            "13800138004,other,,2027-01-01\n")
    reply = _upload(agent, b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert reply.status == 200
    result = re.search(r'<section id="dnc-import-result".*?</section>', reply.text, re.S)
    assert result is not None
    assert "已导入 2 个号码；0 个已在名单上；3 行有问题。" in result.group(0)
    assert "第 3 行: 号码无效 (12345)" in result.group(0)
    assert "第 4 行: 原因无法识别 (angry)" in result.group(0)
    assert "第 5 行: 到期日无效" in result.group(0)
    assert "2027-01-01 00:00 UTC+8" in reply.text  # the expiry, local
    gbk = _upload(agent, "phone,note\n13800138005,家属代为要求\n".encode("gbk"))
    assert "已导入 1 个号码" in gbk.text and "家属代为要求" in gbk.text
    assert [(p, src) for p, _, src, _, _ in _entries(site)] == [
        ("+8613800138001", DncSource.IMPORT), ("+8613800138004", DncSource.IMPORT),
        ("+8613800138005", DncSource.IMPORT)]
    refused = _upload(agent, b"13800138006,other\n")
    assert refused.status == 400 and "首行须为表头" in refused.text
    assert _upload(agent, "\ufeffphone".encode("utf-16")).status == 400
    assert _upload(agent, b"phone\n13800138007\n", csrf="forged").status == 403
    assert len(_entries(site)) == 3
    assert _audited(site) == [("dnc.import", "user:agent_card")] * 2


def test_the_expiry_is_a_local_day(site: Site) -> None:
    admin = _client(site, "admin")
    admin.get("/dnc")
    admin.post("/dnc", {"phone": "13800138000", "reason": "other", "expires": "2026-04-01"})
    with site.db.session() as s:
        expires = s.execute(select(DoNotCall.expires_at)).scalar_one()
    assert expires == dt.datetime(2026, 3, 31, 16, 0, tzinfo=dt.UTC)


def test_every_state_and_problem_has_words_in_both_languages() -> None:
    from console.i18n import CATALOGUE
    from core.do_not_call import CsvProblem, DncState, ImportProblem

    for lang in ("zh", "en"):
        keys = ([f"dnc_state.{v.value}" for v in DncState]
                + [f"dnc_problem.{v.value}" for v in ImportProblem]
                + [f"problem.csv_{v.value}" for v in CsvProblem])
        assert [k for k in keys if k not in CATALOGUE[lang]] == [], lang
