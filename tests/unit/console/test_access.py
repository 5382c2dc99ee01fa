"""Roles, department scope and temporary grants; logins with lockout, every one audited."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from console.access import ROLE_PERMISSIONS, Permission, load_principal
from console.accounts import AccountService, LoginResult
from console.forms import FormError, GrantForm, UserForm
from console.login_throttle import FIRST_WAIT
from core.audit import AuditLog, verify_chain
from core.clock import FakeClock
from core.enums import Role
from core.store.db import Database
from core.store.models import AuditEntry, Department, User, UserGrant
from recordings.store import RecordingStore
from tests.audit_key import TEST_AUDIT_KEY
from tests.unit.console.seed import PASSWORD, Seeded, seed


@pytest.fixture
def seeded(sqlite_db: Database, clock: FakeClock, tmp_path: Path) -> Seeded:
    audit = AuditLog(clock, TEST_AUDIT_KEY)
    return seed(sqlite_db, clock, RecordingStore(tmp_path / "r", clock, audit))


def test_roles_get_their_permissions_and_departments(sqlite_db: Database, clock: FakeClock,
                                                      seeded: Seeded) -> None:
    with sqlite_db.session() as s:
        mgr = load_principal(s, seeded.users["mgr_card"], clock.now())
        admin = load_principal(s, seeded.users["admin"], clock.now())
        sysadmin = load_principal(s, seeded.users["sys"], clock.now())
    assert mgr is not None and admin is not None and sysadmin is not None
    assert mgr.departments == frozenset()  # acting under no permission: nothing
    mgr = mgr.acting_as(Permission.REPORTS)
    assert mgr.departments == frozenset({seeded.card_id})
    assert mgr.has(Permission.REPORTS) and not mgr.has(Permission.WORKLIST)
    assert mgr.sees(seeded.card_id) and not mgr.sees(seeded.onc_id) and not mgr.sees(None)
    admin = admin.acting_as(Permission.CALLS)
    assert admin.departments is None and admin.sees(seeded.onc_id)
    assert sysadmin.has(Permission.USERS) and not sysadmin.has(Permission.PLAY)


def test_a_grant_adds_its_department_until_it_expires(sqlite_db: Database, clock: FakeClock,
                                                      seeded: Seeded) -> None:
    accounts = AccountService(clock, AuditLog(clock, TEST_AUDIT_KEY), 3)
    agent = seeded.users["agent_card"]
    with sqlite_db.session() as s:
        accounts.grant(s, GrantForm(agent, Role.DEPT_MANAGER, seeded.onc_id, 2),
                       seeded.users["sys"], "user:sys")
    with sqlite_db.session() as s:
        now = load_principal(s, agent, clock.now())
        later = load_principal(s, agent, clock.now() + dt.timedelta(days=2, seconds=1))
    assert now is not None and later is not None
    assert now.acting_as(Permission.CALLS).departments == \
        frozenset({seeded.card_id, seeded.onc_id})
    assert now.acting_as(Permission.REPORTS).departments == frozenset({seeded.onc_id})
    assert now.acting_as(Permission.WORKLIST).departments == frozenset({seeded.card_id})
    assert Role.DEPT_MANAGER in now.roles
    assert later.acting_as(Permission.CALLS).departments == frozenset({seeded.card_id})
    assert not later.has(Permission.REPORTS)


def test_a_grant_never_widens_another_permission_nor_makes_anyone_hospital_wide(
        sqlite_db: Database, clock: FakeClock, seeded: Seeded) -> None:
    """Found in a hostile trial: an ORTH manager granted "agent in GSURG" read GSURG's
    reports; granted "agent" with no department, became hospital-wide; a sysadmin granted
    themselves admin and played recordings."""
    accounts = AccountService(clock, AuditLog(clock, TEST_AUDIT_KEY), 3)
    mgr, sysadmin = seeded.users["mgr_card"], seeded.users["sys"]
    with sqlite_db.session() as s:
        accounts.grant(s, GrantForm(mgr, Role.AGENT, seeded.onc_id, 2), sysadmin, "user:sys")
        for form, field, problem in [
                (GrantForm(mgr, Role.AGENT, None, 2), "department_id", "required"),
                (GrantForm(mgr, Role.ADMIN, seeded.onc_id, 2), "role", "not_grantable"),
                (GrantForm(sysadmin, Role.SUPERVISOR, seeded.onc_id, 2), "user_id",
                 "not_yourself")]:
            with pytest.raises(FormError) as refused:
                accounts.grant(s, form, sysadmin, "user:sys")
            assert (refused.value.field, refused.value.problem) == (field, problem)
    with sqlite_db.session() as s:
        who = load_principal(s, mgr, clock.now())
        sys_who = load_principal(s, sysadmin, clock.now())
    assert who is not None and sys_who is not None
    assert who.acting_as(Permission.REPORTS).departments == frozenset({seeded.card_id})
    assert who.acting_as(Permission.WORKLIST).departments == frozenset({seeded.onc_id})
    assert who.acting_as(Permission.CALLS).departments == \
        frozenset({seeded.card_id, seeded.onc_id})
    assert not sys_who.has(Permission.PLAY) and not sys_who.has(Permission.CALLS)


def test_failed_logins_slow_the_guesser_and_every_attempt_is_in_a_valid_chain(
        sqlite_db: Database, clock: FakeClock, seeded: Seeded) -> None:
    accounts = AccountService(clock, AuditLog(clock, TEST_AUDIT_KEY), 3)
    with sqlite_db.session() as s:
        for _ in range(3):
            assert accounts.login(s, "agent_card", "nope", "1.2.3.4").result is \
                LoginResult.BAD_CREDENTIALS
        # the guesser's address is slowed down, even with the right password ...
        assert accounts.login(s, "agent_card", PASSWORD, "1.2.3.4").result is \
            LoginResult.THROTTLED
        # ... the colleague at their own desk is not, and their sessions live on
        assert accounts.login(s, "agent_card", PASSWORD, "10.0.0.7").result is LoginResult.OK
        assert load_principal(s, seeded.users["agent_card"], clock.now()) is not None
    clock.advance(FIRST_WAIT + dt.timedelta(seconds=1))
    with sqlite_db.session() as s:
        ok = accounts.login(s, "agent_card", PASSWORD, "1.2.3.4")
        assert ok.result is LoginResult.OK and ok.user_id == seeded.users["agent_card"]
        actions = [e.action for e in s.execute(select(AuditEntry).order_by(AuditEntry.id))
                   .scalars() if e.action.startswith(("login", "user"))]
        assert actions == ["login.failed", "login.failed", "login.failed", "login.throttled",
                           "login.success", "login.success"]
        assert verify_chain(s, TEST_AUDIT_KEY).ok


def test_unknown_and_known_usernames_get_the_same_answers(
        sqlite_db: Database, clock: FakeClock, seeded: Seeded) -> None:
    accounts = AccountService(clock, AuditLog(clock, TEST_AUDIT_KEY), 2)
    with sqlite_db.session() as s:
        answers = {name: [accounts.login(s, name, "wrong", "5.6.7.8").result
                          for _ in range(4)]
                   for name in ("agent_card", "no_such_user")}
    assert answers["agent_card"] == answers["no_such_user"] == [
        LoginResult.BAD_CREDENTIALS, LoginResult.BAD_CREDENTIALS, LoginResult.THROTTLED,
        LoginResult.THROTTLED]


def test_one_address_guessing_many_usernames_is_slowed_down(
        sqlite_db: Database, clock: FakeClock, seeded: Seeded) -> None:
    accounts = AccountService(clock, AuditLog(clock, TEST_AUDIT_KEY), 1)
    with sqlite_db.session() as s:
        results = [accounts.login(s, f"guess{i}", "pw", "9.9.9.9").result for i in range(12)]
        assert results[:10] == [LoginResult.BAD_CREDENTIALS] * 10
        assert results[10:] == [LoginResult.THROTTLED] * 2
        assert accounts.login(s, "agent_card", PASSWORD, "10.0.0.7").result is LoginResult.OK


def test_inactive_users_cannot_log_in(sqlite_db: Database, clock: FakeClock,
                                      seeded: Seeded) -> None:
    accounts = AccountService(clock, AuditLog(clock, TEST_AUDIT_KEY), 3)
    with sqlite_db.session() as s:
        accounts.set_active(s, seeded.users["sup_card"], False, "user:sys")
    with sqlite_db.session() as s:
        assert accounts.login(s, "sup_card", PASSWORD, "-").result is \
            LoginResult.BAD_CREDENTIALS
        assert load_principal(s, seeded.users["sup_card"], clock.now()) is None


def test_user_creation_refuses_duplicates_and_managers_without_department(
        sqlite_db: Database, clock: FakeClock, seeded: Seeded) -> None:
    accounts = AccountService(clock, AuditLog(clock, TEST_AUDIT_KEY), 3)
    with pytest.raises(FormError, match="taken"), sqlite_db.session() as s:
        accounts.create_user(s, UserForm("agent_card", "x", "long-password", Role.AGENT, None),
                             "cli")
    with pytest.raises(FormError, match="required"), sqlite_db.session() as s:
        accounts.create_user(s, UserForm("newmgr", "x", "long-password", Role.DEPT_MANAGER,
                                         None), "cli")
    with pytest.raises(FormError, match="unknown_choice"), sqlite_db.session() as s:
        accounts.create_user(s, UserForm("newagent", "x", "long-password", Role.AGENT, 999),
                             "cli")
    with sqlite_db.session() as s:
        assert s.execute(select(User).where(User.username.in_(
            ["newmgr", "newagent"]))).first() is None
        assert s.execute(select(AuditEntry).where(AuditEntry.action == "user.create")
                         ).first() is None


_grants = st.lists(st.tuples(st.sampled_from(list(Role)), st.sampled_from([None, 0, 1]),
                             st.booleans(), st.booleans()), max_size=5)


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(role=st.sampled_from(list(Role)), home=st.sampled_from([None, 0, 1]), grants=_grants)
def test_no_grant_reaches_past_the_departments_that_give_each_permission(
        sqlite_db: Database, clock: FakeClock, seeded: Seeded, role: Role, home: int | None,
        grants: list[tuple[Role, int | None, bool, bool]]) -> None:
    """For any account and any grants in the store (hostile ones too: no department, admin,
    self-granted, expired), each permission reaches exactly the departments of the account
    role and of the valid, unexpired grants whose role holds it; hospital-wide only when the
    account itself is."""
    with sqlite_db.session() as s:
        depts = sorted(s.execute(select(Department.id)).scalars())
    dept = {None: None, 0: depts[0], 1: depts[1]}
    now = clock.now()
    with sqlite_db.session() as s:
        s.execute(delete(UserGrant))
        user = User(username=f"u{len(grants)}-{role.value}", display_name="u",
                    password_hash="x", role=role, department_id=dept[home], active=True,
                    created_at=now)
        s.add(user)
        s.flush()
        for g_role, g_dept, by_self, expired in grants:
            s.add(UserGrant(user_id=user.id, role=g_role, department_id=dept[g_dept],
                            granted_by=user.id if by_self else seeded.users["sys"],
                            expires_at=now + dt.timedelta(days=-1 if expired else 1),
                            created_at=now))
        s.flush()
        who = load_principal(s, user.id, now)
        s.rollback()
    assert who is not None
    account_dept = dept[home]
    for permission in Permission:
        holders: set[int] | None = set()
        if permission in ROLE_PERMISSIONS[role]:
            holders = None if role in (Role.ADMIN, Role.SYSADMIN) or account_dept is None \
                else {account_dept}
        for g_role, g_dept, by_self, expired in grants:
            g_id = dept[g_dept]
            if (holders is not None and permission in ROLE_PERMISSIONS[g_role]
                    and g_role not in (Role.ADMIN, Role.SYSADMIN) and g_id is not None
                    and not by_self and not expired):
                holders.add(g_id)
        if holders is not None and not holders and permission not in ROLE_PERMISSIONS[role]:
            assert not who.has(permission), permission
            continue
        assert who.acting_as(permission).departments == (
            None if holders is None else frozenset(holders)), permission
