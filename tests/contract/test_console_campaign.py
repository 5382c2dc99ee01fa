"""Campaign control in the console: who may pause what, no-ops said as such, every change
audited; the dashboard shows the pauses, a date picker, and the live section for today."""

from __future__ import annotations

from sqlalchemy import select

from core.enums import HoldScope
from core.store.models import AuditEntry, CampaignHold
from tests.contract.test_console_web import _client
from tests.unit.console.fixtures import Site, site_fixture  # noqa: F401 - the fixture


def _holds(site: Site) -> list[tuple[HoldScope, int | None, str | None, bool]]:
    with site.db.session() as s:
        return [(h.scope, h.department_id, h.reason, h.released_at is None)
                for h in s.execute(select(CampaignHold).order_by(CampaignHold.id)).scalars()]


def test_a_supervisor_pauses_and_resumes_their_department(site: Site) -> None:
    sup = _client(site, "sup_card")
    page = sup.get("/")
    assert 'id="wallboard"' in page.text and 'id="pause-form"' in page.text
    assert "外呼正常进行，没有暂停" in page.text
    done = sup.post("/campaign/pause", {"scope": "department", "department": "CARD",
                                        "reason": "科室晨会"})
    assert done.status == 200 and "已暂停外呼" in done.text
    assert "科室晨会" in done.text and "CARD 心内科" in done.text
    again = sup.post("/campaign/pause", {"scope": "department", "department": "CARD",
                                         "reason": "again"})
    assert "已经处于暂停状态，未作改动" in again.text
    resumed = sup.post("/campaign/resume", {"scope": "department", "department": "CARD"})
    assert "已恢复外呼" in resumed.text
    assert _holds(site) == [(HoldScope.DEPARTMENT, site.seeded.card_id, "科室晨会", False)]
    with site.db.session() as s:
        audited = s.execute(select(AuditEntry.action, AuditEntry.actor)
                            .where(AuditEntry.action.like("campaign.%"))
                            .order_by(AuditEntry.id)).all()
    assert audited == [("campaign.pause", "user:sup_card"), ("campaign.resume", "user:sup_card")]


def test_steering_is_scoped_and_refused_outside_it(site: Site) -> None:
    sup = _client(site, "sup_card")
    sup.get("/")
    for form in ({"scope": "department", "department": "ONC", "reason": "r"},
                 {"scope": "all", "reason": "r"},
                 {"scope": "script", "script": "card-post-discharge", "reason": "r"}):
        assert sup.post("/campaign/pause", form).status == 403
    agent = _client(site, "agent_card")
    page = agent.get("/")
    assert 'id="wallboard"' in page.text and 'id="pause-form"' not in page.text
    assert agent.post("/campaign/pause", {"scope": "department", "department": "CARD",
                                          "reason": "r"}).status == 403
    admin = _client(site, "admin")
    admin.get("/")
    assert admin.post("/campaign/pause", {"scope": "department", "department": "CARD",
                                          "reason": ""}).status == 400  # a reason is required
    assert admin.post("/campaign/pause", {"scope": "department", "department": "NOPE",
                                          "reason": "r"}).status == 400
    assert _holds(site) == []
    assert admin.post("/campaign/pause", {"scope": "all", "reason": "trunk work"}).status == 200
    # the manager of oncology sees the hospital-wide pause but cannot lift it
    onc = _client(site, "mgr_onc")
    page = onc.get("/")
    assert "全部外呼" in page.text and "trunk work" in page.text and "ADMIN" in page.text
    assert onc.post("/campaign/resume", {"scope": "all"}).status == 403
    assert _holds(site) == [(HoldScope.ALL, None, "trunk work", True)]


def test_a_past_day_has_a_picker_and_no_live_section(site: Site) -> None:
    sup = _client(site, "sup_card")
    past = sup.get("/?day=2026-01-05")
    assert past.status == 200 and 'type="date"' in past.text
    assert 'id="wallboard"' not in past.text and "历史总览" in past.text
