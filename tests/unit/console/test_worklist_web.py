"""The worklist's tabs, hand-over and callbacks over real HTTP, on each store: a supervisor
reassigns a claimed ticket and the new agent finds it under "my tickets"; an agent who
tries is refused (403), another department's ticket is 404; a callback outside the hours
is refused with the hours shown; the extension is remembered; the closed history."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

from sqlalchemy import select

from console.passwords import hash_password
from core.enums import Role, TicketStatus
from core.store.models import AuditEntry, Ticket, User
from tests.unit.console.fixtures import Site, site_fixture  # noqa: F401 - the fixture
from tests.unit.console.seed import PASSWORD
from tests.unit.console.server import Client


def _client(site: Site, user: str) -> Client:
    c = Client(site.base)
    assert c.login(user, PASSWORD).status == 200
    return c


def _second_agent(site: Site) -> int:
    with site.db.session() as s:
        user = User(username="agent_two", display_name="李娜", password_hash=hash_password(
            PASSWORD), role=Role.AGENT, department_id=site.seeded.card_id, active=True,
            created_at=site.clock.now())
        s.add(user)
        s.flush()
        return user.id


def _ticket(site: Site, tid: int) -> Ticket:
    with site.db.session() as s:
        found = s.get(Ticket, tid)
        assert found is not None
        s.expunge(found)
        return found


def test_a_supervisor_reassigns_and_the_agent_sees_it_under_my_tickets(site: Site) -> None:
    tid = site.seeded.card_ticket
    two = _second_agent(site)
    agent = _client(site, "agent_card")
    assert agent.post(f"/worklist/{tid}/claim").status == 200
    assert agent.post(f"/worklist/{tid}/release").status == 200  # their own: allowed
    assert agent.post(f"/worklist/{tid}/claim").status == 200
    sup = _client(site, "sup_card")
    team = sup.get("/worklist")
    assert 'reassign-form"' in team.text and "李娜 (agent_two)" in team.text
    assert sup.post(f"/worklist/{site.seeded.onc_ticket}/reassign",
                    {"user_id": str(two)}).status == 404
    assert sup.post(f"/worklist/{tid}/reassign", {"user_id": str(two)}).status == 200
    t = _ticket(site, tid)
    assert (t.status, t.assigned_user_id) == (TicketStatus.CLAIMED, two)
    mine = _client(site, "agent_two").get("/worklist?view=mine")
    assert f'data-ticket="{tid}"' in mine.text and 'id="tab-mine" class="on"' in mine.text
    assert f'data-ticket="{tid}"' not in agent.get("/worklist?view=mine").text
    with site.db.session() as s:
        details = [e.detail for e in s.execute(select(AuditEntry).where(
            AuditEntry.action == "ticket.reassign")).scalars()]
    assert details == [{"from_user": "agent_card", "to_user": "agent_two"}]
    # no longer theirs: the first agent may neither take it back nor give it away
    for action, form in (("reassign", {"user_id": str(site.seeded.users["agent_card"])}),
                         ("release", {})):
        refused = agent.post(f"/worklist/{tid}/{action}", form)
        assert refused.status == 403 and 'data-code="permission_denied"' in refused.text
    assert _ticket(site, tid).assigned_user_id == two


def test_a_callback_outside_the_hours_is_refused_showing_them(site: Site) -> None:
    tid = site.seeded.card_ticket
    agent = _client(site, "agent_card")
    assert agent.post(f"/worklist/{tid}/claim").status == 200
    late = agent.post(f"/worklist/{tid}/close", {"disposition": "call_back",
                                                 "callback_at": "2026-03-10T21:00"})
    assert late.status == 400 and "09:00-20:00" in late.text
    missing = agent.post(f"/worklist/{tid}/close", {"disposition": "call_back"})
    assert missing.status == 400 and 'data-code="invalid_input"' in missing.text
    assert _ticket(site, tid).status is TicketStatus.CLAIMED
    # the clock reads 09:00 local: 15:00 today is inside the hours
    done = agent.post(f"/worklist/{tid}/close", {"disposition": "call_back",
                                                 "callback_at": "2026-03-10T15:00"})
    assert done.status == 200
    closed = agent.get("/worklist?view=closed&q=" + quote("王芳"))
    assert f'data-ticket="{tid}"' in closed.text and "约定回电" in closed.text
    assert "2026-03-10 09:00 UTC+8" in closed.text  # closed, in local time
    day = site.clock.now().date()
    other_day = (day - dt.timedelta(days=1)).isoformat()
    assert f'data-ticket="{tid}"' not in agent.get(
        f"/worklist?view=closed&date_from={other_day}&date_to={other_day}").text


def test_the_extension_is_remembered_for_the_next_call(site: Site) -> None:
    tid = site.seeded.card_ticket
    agent = _client(site, "agent_card")
    assert agent.post(f"/worklist/{tid}/claim").status == 200
    assert 'name="extension" size="6" maxlength="20" required pattern="[0-9*#+]{1,20}" ' \
           'value=""' in agent.get("/worklist").text
    assert agent.post(f"/worklist/{tid}/call", {"extension": "2001"}).status == 200
    assert 'value="2001"' in agent.get("/worklist").text
    with site.db.session() as s:
        assert s.execute(select(User.extension).where(
            User.id == site.seeded.users["agent_card"])).scalar() == "2001"
