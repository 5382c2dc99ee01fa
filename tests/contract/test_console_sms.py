"""Messages in the console, on every store: each patient's message history with its
delivery state in words and the link's token hidden, only within the reader's departments;
the SMS templates with their counter; the month's delivery and link response rates,
recomputed here from the raw rows with a plain query."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from core.enums import MessageBlock, MessagePurpose, MessageStatus
from core.store.models import SmsMessage, WebLink
from core.web_links import new_token
from tests.unit.console.fixtures import Site, site_fixture  # noqa: F401 - the fixture
from tests.unit.console.seed import PASSWORD
from tests.unit.console.server import Client

AT = dt.datetime(2026, 3, 5, 2, 0, tzinfo=dt.UTC)  # 10:00 on 03-05 in Shanghai


def _client(site: Site, user: str) -> Client:
    c = Client(site.base)
    assert c.login(user, PASSWORD).status == 200
    return c


def _message(site: Site, patient: int, dept: int, status: MessageStatus, body: str,
             link_used: bool | None = None, block: MessageBlock | None = None) -> None:
    with site.db.session() as s:
        link_id = None
        if link_used is not None:
            link = WebLink(token_hash=f"h{patient}{status.value}{body[-3:]}{link_used}",
                           patient_id=patient, task_id=1, failures=0, created_at=AT,
                           expires_at=AT + dt.timedelta(days=3),
                           used_at=AT if link_used else None)
            s.add(link)
            s.flush()
            link_id = link.id
        s.add(SmsMessage(patient_id=patient, department_id=dept, link_id=link_id,
                         purpose=MessagePurpose.QUESTIONNAIRE_LINK if link_id else
                         MessagePurpose.REMINDER, template="questionnaire_link",
                         locale="zh-CN", phone="+8613800138000", body=body, encoding="ucs2",
                         segments=2, status=status, block_reason=block, tries=1,
                         next_try_at=AT, created_at=AT,
                         final_at=AT if status is not MessageStatus.SUBMITTED else None))


def test_the_patient_page_shows_the_messages_in_words_without_the_token(site: Site) -> None:
    sd = site.seeded
    token = new_token(b"k" * 32)
    _message(site, sd.card_patient, sd.card_id, MessageStatus.DELIVERED,
             f"【示范医院】您好，邀请您填写一份简短问卷：https://fu.example.org/q/{token} "
             "回复TD退订",
             link_used=False)
    _message(site, sd.card_patient, sd.card_id, MessageStatus.BLOCKED, "",
             block=MessageBlock.OPTED_OUT)
    _message(site, sd.card_patient, sd.onc_id, MessageStatus.FAILED, "其他科室的短信")
    page = _client(site, "mgr_card").get(f"/patients/{sd.card_patient}").text
    table = page[page.index('id="messages"'):]
    assert "已送达" in table and "问卷链接" in table and "患者已退订" in table
    assert token not in page and "/q/…" in table
    assert "其他科室的短信" not in page  # another department's message stays hidden
    for raw in ("delivered", "questionnaire_link", "opted_out"):
        assert f">{raw}<" not in table


def test_the_sms_templates_show_their_counter(site: Site) -> None:
    page = _client(site, "admin").get("/definitions").text
    table = page[page.index('id="sms-templates"'):]
    row = table[table.index('data-template="questionnaire_link" data-locale="zh-CN"'):]
    row = row[:row.index("</tr>")]
    assert "问卷链接" in row and "UCS-2" in row and row.rstrip().endswith("<td>2</td>")
    # an English text with the English name fits the 7-bit alphabet: one part
    row = table[table.index('data-template="revisit_reminder" data-locale="en"'):]
    row = row[:row.index("</tr>")]
    assert "复诊提醒" in row and "GSM 7" in row and row.rstrip().endswith("<td>1</td>")


def test_the_months_delivery_and_link_response_rates_match_the_raw_rows(site: Site) -> None:
    sd = site.seeded
    for i in range(6):
        _message(site, sd.card_patient, sd.card_id,
                 MessageStatus.DELIVERED if i < 5 else MessageStatus.FAILED, f"body {i:03d}",
                 link_used=i < 2)
    _message(site, sd.card_patient, sd.card_id, MessageStatus.BLOCKED, "",
             block=MessageBlock.OPTED_OUT)  # never went: not counted as sent
    with site.db.session() as s:
        sent, delivered, links, answered = s.execute(text(
            "SELECT count(*), sum(CASE WHEN m.status = 'delivered' THEN 1 ELSE 0 END), "
            "count(m.link_id), sum(CASE WHEN l.used_at IS NOT NULL THEN 1 ELSE 0 END) "
            "FROM sms_messages m LEFT JOIN web_links l ON l.id = m.link_id "
            "WHERE m.department_id = :d AND m.status IN ('submitted', 'delivered', 'failed')"),
            {"d": sd.card_id}).one()
    page = _client(site, "mgr_card").get(
        f"/reports/monthly?department={sd.card_id}&month=2026-03").text
    assert f'id="sms-delivery">{100 * delivered / sent:.1f}% <small>({delivered} / {sent})' \
        in page
    assert f'id="link-response">{100 * answered / links:.1f}% <small>({answered} / {links})' \
        in page


def test_a_patients_reply_reaches_the_worklist_as_a_ticket_in_words(site: Site) -> None:
    from core.audit import AuditLog
    from core.clock import FakeClock
    from core.store.models import Patient
    from core.tickets import ResponseTimes
    from messaging.gateway import InboundSms
    from messaging.inbound import handle
    from tests.audit_key import TEST_AUDIT_KEY

    sd = site.seeded
    with site.db.session() as s:
        phone = s.get_one(Patient, sd.card_patient).phone
        assert phone is not None
        row = handle(s, AuditLog(FakeClock(AT), TEST_AUDIT_KEY), "sim",
                     InboundSms(phone, "最近胸口有点闷，想问下医生", raw=""), AT, "CN",
                     ResponseTimes())
    c = _client(site, "agent_card")
    page = c.get("/worklist").text
    card = page[page.index(f'data-ticket="{row.ticket_id}"'):]
    card = card[:card.index("</tr>")] if "</tr>" in card else card[:2000]
    assert "患者短信回复" in card and "最近胸口有点闷" in card and ">sms_reply<" not in card
    assert c.post(f"/worklist/{row.ticket_id}/claim").status == 200
