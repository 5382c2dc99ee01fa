"""Who may do what, and in which departments.

A `Principal` is parsed once per request from the user row and its unexpired grants.
`departments is None` means every department; otherwise every query filters by it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session

from core.enums import Role
from core.errors import PermissionDenied
from core.store.models import User, UserGrant


class Permission(StrEnum):
    DASHBOARD = "dashboard"
    CALLS = "calls"  # task/call search, patient and call pages
    PLAY = "play"  # listen to / download recordings
    WORKLIST = "worklist"  # claim and close tickets, click-to-call
    SPOTCHECK = "spotcheck"
    REPORTS = "reports"
    DEFINITIONS = "definitions"  # scripts and rules viewer
    USERS = "users"  # accounts and temporary grants
    LEGAL_HOLD = "legal_hold"  # place / release a legal hold on a recording


P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.SYSADMIN: frozenset({P.DASHBOARD, P.USERS, P.DEFINITIONS}),
    Role.ADMIN: frozenset({P.DASHBOARD, P.CALLS, P.PLAY, P.REPORTS, P.DEFINITIONS,
                           P.LEGAL_HOLD}),
    Role.DEPT_MANAGER: frozenset({P.DASHBOARD, P.CALLS, P.PLAY, P.REPORTS}),
    Role.SUPERVISOR: frozenset({P.DASHBOARD, P.CALLS, P.PLAY, P.SPOTCHECK, P.WORKLIST}),
    Role.AGENT: frozenset({P.DASHBOARD, P.CALLS, P.PLAY, P.WORKLIST}),
}
# Hospital-wide roles; the others are bound to their department when they have one.
HOSPITAL_WIDE = frozenset({Role.SYSADMIN, Role.ADMIN})
# Roles that must name a department (a department manager without one manages nothing).
NEEDS_DEPARTMENT = frozenset({Role.DEPT_MANAGER})


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    username: str
    display_name: str
    role: Role
    roles: frozenset[Role]
    permissions: frozenset[Permission]
    departments: frozenset[int] | None  # None: every department

    def has(self, permission: Permission) -> bool:
        return permission in self.permissions

    def require(self, permission: Permission) -> None:
        """Raises PermissionDenied unless the principal holds `permission`."""
        if permission not in self.permissions:
            raise PermissionDenied(f"{self.username} may not use {permission.value}")

    def sees(self, department_id: int | None) -> bool:
        if self.departments is None:
            return True
        return department_id is not None and department_id in self.departments

    def scope(self, column: InstrumentedAttribute[int] | InstrumentedAttribute[int | None]
              ) -> ColumnElement[bool]:
        """A WHERE clause keeping rows of `column` inside the principal's departments."""
        if self.departments is None:
            return true()
        return column.in_(sorted(self.departments))

    @property
    def actor(self) -> str:
        return f"user:{self.username}"[:64]


def _one(role: Role, department_id: int | None) -> tuple[frozenset[Permission], set[int] | None]:
    perms = ROLE_PERMISSIONS[role]
    if role in HOSPITAL_WIDE or department_id is None:
        return perms, None
    return perms, {department_id}


def load_principal(session: Session, user_id: int, now: dt.datetime) -> Principal | None:
    """The principal for an active user (None if the user is gone, inactive or locked)."""
    user = session.get(User, user_id)
    if user is None or not user.active:
        return None
    if user.locked_until is not None and user.locked_until > now:
        return None
    perms, depts = _one(user.role, user.department_id)
    permissions = set(perms)
    roles = {user.role}
    departments: set[int] | None = None if depts is None else set(depts)
    grants = session.execute(select(UserGrant).where(UserGrant.user_id == user_id,
                                                     UserGrant.expires_at > now)).scalars()
    for grant in grants:
        g_perms, g_depts = _one(grant.role, grant.department_id)
        permissions |= g_perms
        roles.add(grant.role)
        if departments is not None:
            departments = None if g_depts is None else departments | g_depts
    return Principal(user.id, user.username, user.display_name, user.role, frozenset(roles),
                     frozenset(permissions),
                     None if departments is None else frozenset(departments))
