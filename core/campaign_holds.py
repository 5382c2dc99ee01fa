"""Pausing and resuming calling: for everything, one department, or one script.

A hold is a row in `campaign_holds`; it is in force until released. Every dialer reads the
holds in force at each claim (one small query), so a pause stops new calls in every dialer
process at its next claim, and calls already in progress finish normally. Pausing what is
already paused, or resuming what is not paused, changes nothing and says so. Each change is
audited in the caller's transaction, with who and why.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from core.audit import AuditLog
from core.enums import HoldScope
from core.errors import InvalidRequest
from core.store.models import CampaignHold, Department


@dataclass(frozen=True, slots=True)
class Holds:
    """The holds in force, as the claim uses them."""

    everything: bool
    departments: frozenset[int]
    scripts: frozenset[str]

    def __bool__(self) -> bool:
        return self.everything or bool(self.departments) or bool(self.scripts)

    def covers(self, department_id: int, scripts: Iterable[str]) -> bool:
        """Whether a call for `department_id` asking `scripts` is paused."""
        return (self.everything or department_id in self.departments
                or any(s in self.scripts for s in scripts))


NO_HOLDS = Holds(False, frozenset(), frozenset())


@dataclass(frozen=True, slots=True)
class HoldTarget:
    """What to pause or resume: everything, a department (by id) or a script id."""

    scope: HoldScope
    department_id: int | None = None
    script_id: str | None = None

    def __post_init__(self) -> None:
        if (self.scope is HoldScope.DEPARTMENT) != (self.department_id is not None) or \
                (self.scope is HoldScope.SCRIPT) != (self.script_id is not None):
            raise ValueError(f"a {self.scope.value} hold needs exactly its own target")


@dataclass(frozen=True, slots=True)
class HoldRow:
    """A hold in force, for display."""

    id: int
    scope: HoldScope
    department_id: int | None
    department_code: str | None
    department_name: str | None
    script_id: str | None
    reason: str
    held_by: str
    held_at: dt.datetime


@dataclass(frozen=True, slots=True)
class HoldChange:
    """What a pause or resume did: `changed` False means it was a no-op (see `message`)."""

    changed: bool
    message: str


def holds_in_force(conn: Connection | Session) -> Holds:
    """The holds in force now (one query)."""
    rows = conn.execute(select(CampaignHold.scope, CampaignHold.department_id,
                               CampaignHold.script_id)
                        .where(CampaignHold.released_at.is_(None))).all()
    if not rows:
        return NO_HOLDS
    return Holds(any(scope == HoldScope.ALL for scope, _, _ in rows),
                 frozenset(d for scope, d, _ in rows if scope == HoldScope.DEPARTMENT
                           and d is not None),
                 frozenset(s for scope, _, s in rows if scope == HoldScope.SCRIPT
                           and s is not None))


def list_holds(session: Session) -> list[HoldRow]:
    """The holds in force, oldest first, with their department's code and name."""
    rows = session.execute(
        select(CampaignHold, Department.code, Department.name)
        .outerjoin(Department, Department.id == CampaignHold.department_id)
        .where(CampaignHold.released_at.is_(None)).order_by(CampaignHold.held_at)).all()
    return [HoldRow(h.id, h.scope, h.department_id, code, name, h.script_id, h.reason,
                    h.held_by, h.held_at) for h, code, name in rows]


def _describe(target: HoldTarget, department: Department | None) -> str:
    if target.scope is HoldScope.ALL:
        return "all calling"
    if target.scope is HoldScope.DEPARTMENT:
        return f"department {department.code if department else target.department_id}"
    return f"script {target.script_id}"


def _in_force(session: Session, target: HoldTarget) -> CampaignHold | None:
    return session.execute(select(CampaignHold).where(
        CampaignHold.released_at.is_(None), CampaignHold.scope == target.scope,
        CampaignHold.department_id.is_(None) if target.department_id is None
        else CampaignHold.department_id == target.department_id,
        CampaignHold.script_id.is_(None) if target.script_id is None
        else CampaignHold.script_id == target.script_id)).scalars().first()


def pause(session: Session, audit: AuditLog, target: HoldTarget, *, reason: str, actor: str,
          now: dt.datetime) -> HoldChange:
    """Pause `target`. A reason is required: the wallboard and the audit show it."""
    if not reason.strip():
        raise InvalidRequest("a pause needs a reason (it is shown to everyone and audited)")
    department = _department(session, target)
    what = _describe(target, department)
    if _in_force(session, target) is not None:
        return HoldChange(False, f"{what} is already paused")
    hold = CampaignHold(scope=target.scope, department_id=target.department_id,
                        script_id=target.script_id, reason=reason.strip(), held_by=actor,
                        held_at=now)
    session.add(hold)
    session.flush()
    audit.append(session, actor, "campaign.pause", "campaign_hold", hold.id,
                 {"scope": target.scope.value, "department": department.code
                  if department else None, "script": target.script_id,
                  "reason": hold.reason})
    return HoldChange(True, f"{what} paused")


def resume(session: Session, audit: AuditLog, target: HoldTarget, *, actor: str,
           now: dt.datetime, reason: str = "") -> HoldChange:
    """Release the hold on `target` (other holds stay: resuming a department does not
    resume an "everything" pause)."""
    department = _department(session, target)
    what = _describe(target, department)
    hold = _in_force(session, target)
    if hold is None:
        return HoldChange(False, f"{what} is not paused")
    hold.released_by = actor
    hold.released_at = now
    audit.append(session, actor, "campaign.resume", "campaign_hold", hold.id,
                 {"scope": target.scope.value, "department": department.code
                  if department else None, "script": target.script_id,
                  "reason": reason.strip()})
    return HoldChange(True, f"{what} resumed")


def _department(session: Session, target: HoldTarget) -> Department | None:
    if target.department_id is None:
        return None
    department = session.get(Department, target.department_id)
    if department is None:
        raise InvalidRequest(f"no department with id {target.department_id}")
    return department
