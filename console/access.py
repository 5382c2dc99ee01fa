"""Who may do what, and in which departments.

A `Principal` is parsed once per request from the user row and its unexpired grants. Each
permission carries its own departments (`scopes`): a role's permissions reach only that
role's departments, so a department manager given "agent in surgery" may work surgery's
tickets but never reads surgery's reports. A request acts under ONE permission
(`acting_as`), and `departments` is that permission's scope: every query filters by it.
`None` means every department; only hospital-wide account roles (admin, sysadmin) and
accounts created without a department have it. A temporary grant always names a
department; it can never make anyone hospital-wide.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from sqlalchemy import ColumnElement, false, select, true
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
    CAMPAIGN = "campaign"  # pause and resume calling (a department manager: their own)
    DNC = "dnc"  # read and add to the hospital-wide do-not-call list
    DNC_REMOVE = "dnc_remove"  # take a number off the do-not-call list
    ASSIGN = "assign"  # release or reassign a ticket someone else claimed (supervisors)


P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.SYSADMIN: frozenset({P.DASHBOARD, P.USERS, P.DEFINITIONS}),
    Role.ADMIN: frozenset({P.DASHBOARD, P.CALLS, P.PLAY, P.REPORTS, P.DEFINITIONS,
                           P.LEGAL_HOLD, P.CAMPAIGN, P.DNC, P.DNC_REMOVE}),
    Role.DEPT_MANAGER: frozenset({P.DASHBOARD, P.CALLS, P.PLAY, P.REPORTS, P.CAMPAIGN}),
    Role.SUPERVISOR: frozenset({P.DASHBOARD, P.CALLS, P.PLAY, P.SPOTCHECK, P.WORKLIST,
                                P.CAMPAIGN, P.DNC, P.DNC_REMOVE, P.ASSIGN}),
    Role.AGENT: frozenset({P.DASHBOARD, P.CALLS, P.PLAY, P.WORKLIST, P.DNC}),
}
# Hospital-wide roles; the others are bound to their department when they have one.
HOSPITAL_WIDE = frozenset({Role.SYSADMIN, Role.ADMIN})
# Roles that must name a department (a department manager without one manages nothing).
NEEDS_DEPARTMENT = frozenset({Role.DEPT_MANAGER})


Scope = frozenset[int] | None  # departments; None: every department


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    username: str
    display_name: str
    role: Role
    roles: frozenset[Role]
    scopes: Mapping[Permission, Scope]  # each permission and the departments it reaches
    departments: Scope = frozenset()  # the scope of the permission acted under

    def has(self, permission: Permission) -> bool:
        return permission in self.scopes

    def require(self, permission: Permission) -> None:
        """Raises PermissionDenied unless the principal holds `permission`."""
        if permission not in self.scopes:
            raise PermissionDenied(f"{self.username} may not use {permission.value}")

    def acting_as(self, permission: Permission) -> Principal:
        """This principal for one request under `permission`: its departments are that
        permission's. Raises PermissionDenied when it is not held."""
        self.require(permission)
        return replace(self, departments=self.scopes[permission])

    def reaches(self, permission: Permission, department_id: int) -> bool:
        """Does `permission` reach `department_id`: held, with that department in its
        scope (whatever permission this request acts under)?"""
        if permission not in self.scopes:
            return False
        scope = self.scopes[permission]
        return scope is None or department_id in scope

    def sees(self, department_id: int | None) -> bool:
        if self.departments is None:
            return True
        return department_id is not None and department_id in self.departments

    def scope(self, column: InstrumentedAttribute[int] | InstrumentedAttribute[int | None]
              ) -> ColumnElement[bool]:
        """A WHERE clause keeping rows of `column` inside the principal's departments."""
        if self.departments is None:
            return true()
        if not self.departments:
            return false()
        return column.in_(sorted(self.departments))

    @property
    def actor(self) -> str:
        return f"user:{self.username}"[:64]


# Roles a temporary grant may never give: hospital-wide power over patient data (admin) or
# over accounts (sysadmin) is an account's role, set and audited where accounts are made.
NOT_GRANTABLE = frozenset({Role.ADMIN, Role.SYSADMIN})


def _widen(scopes: dict[Permission, Scope], role: Role, departments: Scope) -> None:
    for permission in ROLE_PERMISSIONS[role]:
        have = scopes.get(permission, frozenset())
        scopes[permission] = None if have is None or departments is None \
            else have | departments


def role_scopes(role: Role, department_id: int | None) -> dict[Permission, Scope]:
    """An account role's permissions: hospital-wide for admin and sysadmin and for an
    account made without a department, else its department's."""
    scopes: dict[Permission, Scope] = {}
    _widen(scopes, role, None if role in HOSPITAL_WIDE or department_id is None
           else frozenset({department_id}))
    return scopes


def load_principal(session: Session, user_id: int, now: dt.datetime) -> Principal | None:
    """The principal for an active user (None if the user is gone or inactive).
    Grants add their role's permissions in the grant's department only; a grant without a
    department, or of a role no grant may give, adds nothing."""
    user = session.get(User, user_id)
    if user is None or not user.active:
        return None
    scopes = role_scopes(user.role, user.department_id)
    roles = {user.role}
    grants = session.execute(select(UserGrant).where(UserGrant.user_id == user_id,
                                                     UserGrant.expires_at > now)).scalars()
    for grant in grants:
        if grant.role in NOT_GRANTABLE or grant.department_id is None \
                or grant.granted_by == user.id:
            continue
        _widen(scopes, grant.role, frozenset({grant.department_id}))
        roles.add(grant.role)
    return Principal(user.id, user.username, user.display_name, user.role, frozenset(roles),
                     scopes)
