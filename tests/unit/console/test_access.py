"""Roles, department scope and temporary grants; logins with lockout, every one audited."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from console.access import Permission, load_principal
from console.accounts import LOCKOUT, AccountService, LoginResult
from console.forms import FormError, GrantForm, UserForm
from core.audit import AuditLog, verify_chain
from core.clock import FakeClock
from core.enums import Role
from core.store.db import Database
from core.store.models import AuditEntry, User
from recordings.store import RecordingStore
from tests.unit.console.seed import PASSWORD, Seeded, seed


@pytest.fixture
def seeded(sqlite_db: Database, clock: FakeClock, tmp_path: Path) -> Seeded:
    return seed(sqlite_db, clock, RecordingStore(tmp_path / "r", clock, AuditLog(clock)))


def test_roles_get_their_permissions_and_departments(sqlite_db: Database, clock: FakeClock,
                                                      seeded: Seeded) -> None:
    with sqlite_db.session() as s:
        mgr = load_principal(s, seeded.users["mgr_card"], clock.now())
        admin = load_principal(s, seeded.users["admin"], clock.now())
        sysadmin = load_principal(s, seeded.users["sys"], clock.now())
    assert mgr is not None and admin is not None and sysadmin is not None
    assert mgr.departments == frozenset({seeded.card_id})
    assert mgr.has(Permission.REPORTS) and not mgr.has(Permission.WORKLIST)
    assert mgr.sees(seeded.card_id) and not mgr.sees(seeded.onc_id) and not mgr.sees(None)
    assert admin.departments is None and admin.sees(seeded.onc_id)
    assert sysadmin.has(Permission.USERS) and not sysadmin.has(Permission.PLAY)


def test_a_grant_adds_its_department_until_it_expires(sqlite_db: Database, clock: FakeClock,
                                                      seeded: Seeded) -> None:
    accounts = AccountService(clock, AuditLog(clock), 3)
    agent = seeded.users["agent_card"]
    with sqlite_db.session() as s:
        accounts.grant(s, GrantForm(agent, Role.DEPT_MANAGER, seeded.onc_id, 2),
                       seeded.users["sys"], "user:sys")
    with sqlite_db.session() as s:
        now = load_principal(s, agent, clock.now())
        later = load_principal(s, agent, clock.now() + dt.timedelta(days=2, seconds=1))
    assert now is not None and later is not None
    assert now.departments == frozenset({seeded.card_id, seeded.onc_id})
    assert now.has(Permission.REPORTS) and Role.DEPT_MANAGER in now.roles
    assert later.departments == frozenset({seeded.card_id})
    assert not later.has(Permission.REPORTS)


def test_login_lockout_expires_and_every_attempt_is_in_a_valid_chain(
        sqlite_db: Database, clock: FakeClock, seeded: Seeded) -> None:
    accounts = AccountService(clock, AuditLog(clock), 3)
    with sqlite_db.session() as s:
        for _ in range(3):
            assert accounts.login(s, "agent_card", "nope", "1.2.3.4").result is \
                LoginResult.BAD_CREDENTIALS
        assert accounts.login(s, "agent_card", PASSWORD, "1.2.3.4").result is LoginResult.LOCKED
        assert load_principal(s, seeded.users["agent_card"], clock.now()) is None
    clock.advance(LOCKOUT + dt.timedelta(seconds=1))
    with sqlite_db.session() as s:
        ok = accounts.login(s, "agent_card", PASSWORD, "1.2.3.4")
        assert ok.result is LoginResult.OK and ok.user_id == seeded.users["agent_card"]
        actions = [e.action for e in s.execute(select(AuditEntry).order_by(AuditEntry.id))
                   .scalars() if e.action.startswith(("login", "user"))]
        assert actions == ["login.failed", "login.failed", "user.locked", "login.failed",
                           "login.refused_locked", "login.success"]
        assert verify_chain(s).ok
        user = s.get(User, seeded.users["agent_card"])
        assert user.failed_logins == 0 and user.locked_until is None


def test_inactive_users_cannot_log_in(sqlite_db: Database, clock: FakeClock,
                                      seeded: Seeded) -> None:
    accounts = AccountService(clock, AuditLog(clock), 3)
    with sqlite_db.session() as s:
        accounts.set_active(s, seeded.users["sup_card"], False, "user:sys")
    with sqlite_db.session() as s:
        assert accounts.login(s, "sup_card", PASSWORD, "-").result is \
            LoginResult.BAD_CREDENTIALS
        assert load_principal(s, seeded.users["sup_card"], clock.now()) is None


def test_user_creation_refuses_duplicates_and_managers_without_department(
        sqlite_db: Database, clock: FakeClock, seeded: Seeded) -> None:
    accounts = AccountService(clock, AuditLog(clock), 3)
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
