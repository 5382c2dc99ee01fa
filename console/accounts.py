"""Accounts: login with lockout (every attempt audited), users and temporary grants."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from console.access import NEEDS_DEPARTMENT, NOT_GRANTABLE
from console.forms import FormError, GrantForm, UserForm
from console.login_throttle import LoginThrottleStore
from console.passwords import hash_password, verify_password
from console.sessions import revoke_user
from core.audit import AuditLog
from core.clock import Clock
from core.errors import NotFound
from core.store.models import Department, User, UserGrant


class LoginResult(StrEnum):
    OK = "ok"
    BAD_CREDENTIALS = "bad_credentials"
    THROTTLED = "throttled"  # too many failures from this address: wait


@dataclass(frozen=True, slots=True)
class LoginOutcome:
    result: LoginResult
    user_id: int | None = None


class AccountService:
    """Logins, users and grants; each change is one transaction with its audit event."""

    def __init__(self, clock: Clock, audit: AuditLog, max_failed_logins: int) -> None:
        self._clock = clock
        self._audit = audit
        self._throttle = LoginThrottleStore(max_failed_logins)

    def login(self, session: Session, username: str, password: str,
              client: str) -> LoginOutcome:
        """Check a password; every attempt is audited.

        Unknown users, wrong passwords and inactive accounts get the same answer after the
        same work (a password hash is always checked). Failures slow down their (username,
        address) pair and their address (`console.login_throttle`): while one is slowed
        down the answer is THROTTLED, whether or not the username exists.
        """
        now = self._clock.now()
        name = username.strip()[:64]
        detail = {"username": name, "client": client[:64]}
        user = session.execute(select(User).where(User.username == name)).scalar_one_or_none()
        actor = f"user:{name}" if user else "anonymous"
        target = user.id if user else "-"
        until = self._throttle.blocked_until(session, name, client, now)
        if until is not None:
            verify_password(None, password)
            self._audit.append(session, actor, "login.throttled", "user", target,
                               {**detail, "until": until.isoformat()})
            return LoginOutcome(LoginResult.THROTTLED)
        ok = verify_password(user.password_hash if user else None, password)
        if user is None or not user.active or not ok:
            self._throttle.failed(session, name, client, now)
            self._audit.append(session, actor, "login.failed", "user", target, detail)
            return LoginOutcome(LoginResult.BAD_CREDENTIALS)
        self._throttle.succeeded(session, name, client)
        self._audit.append(session, f"user:{name}", "login.success", "user", user.id, detail)
        return LoginOutcome(LoginResult.OK, user.id)

    def logout(self, session: Session, user_id: int, username: str) -> None:
        self._audit.append(session, f"user:{username}", "logout", "user", user_id, {})

    def create_user(self, session: Session, form: UserForm, actor: str) -> User:
        """Raises FormError for a taken username, an unknown department or a missing one."""
        if session.execute(select(User.id).where(User.username == form.username)).first():
            raise FormError("username", "taken")
        if form.department_id is not None and session.get(Department, form.department_id) \
                is None:
            raise FormError("department_id", "unknown_choice")
        if form.role in NEEDS_DEPARTMENT and form.department_id is None:
            raise FormError("department_id", "required")
        user = User(username=form.username, display_name=form.display_name,
                    password_hash=hash_password(form.password), role=form.role,
                    department_id=form.department_id, active=True,
                    created_at=self._clock.now())
        session.add(user)
        session.flush()
        self._audit.append(session, actor, "user.create", "user", user.id,
                           {"username": user.username, "role": user.role.value,
                            "department_id": user.department_id})
        return user

    def grant(self, session: Session, form: GrantForm, granted_by: int, actor: str
              ) -> UserGrant:
        """A temporary right in one department; raises NotFound / FormError for an unknown
        user or department, a grant without a department, a role no grant may give (admin,
        sysadmin) and a grant to oneself."""
        user = session.get(User, form.user_id)
        if user is None:
            raise NotFound(f"user {form.user_id} not found")
        if form.department_id is not None and session.get(Department, form.department_id) \
                is None:
            raise FormError("department_id", "unknown_choice")
        if form.department_id is None:  # a grant never makes anyone hospital-wide
            raise FormError("department_id", "required")
        if form.role in NOT_GRANTABLE:
            raise FormError("role", "not_grantable")
        if user.id == granted_by:
            raise FormError("user_id", "not_yourself")
        now = self._clock.now()
        grant = UserGrant(user_id=user.id, role=form.role, department_id=form.department_id,
                          granted_by=granted_by, expires_at=now + dt.timedelta(days=form.days),
                          created_at=now)
        session.add(grant)
        session.flush()
        self._audit.append(session, actor, "user.grant", "user", user.id,
                           {"role": form.role.value, "department_id": form.department_id,
                            "expires_at": grant.expires_at.isoformat()})
        return grant

    def set_active(self, session: Session, user_id: int, active: bool, actor: str) -> None:
        user = session.get(User, user_id)
        if user is None:
            raise NotFound(f"user {user_id} not found")
        user.active = active
        if not active:
            revoke_user(session, user.id, self._clock.now())
        self._audit.append(session, actor, "user.activate" if active else "user.deactivate",
                           "user", user.id, {})

    def users(self, session: Session) -> list[tuple[User, list[UserGrant]]]:
        now = self._clock.now()
        users = session.execute(select(User).order_by(User.username)).scalars().all()
        grants: dict[int, list[UserGrant]] = {}
        for g in session.execute(select(UserGrant).where(UserGrant.expires_at > now)
                                 .order_by(UserGrant.expires_at)).scalars():
            grants.setdefault(g.user_id, []).append(g)
        return [(u, grants.get(u.id, [])) for u in users]
