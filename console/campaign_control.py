"""Pausing and resuming calling from the console, within what the user may steer.

A hospital-wide user (admin, or a supervisor without a department) may pause everything,
any department or any script; a user bound to departments may pause only those
departments. The holds themselves, their audit and their no-op messages are
`core.campaign_holds`'.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from console.access import Principal
from console.forms import Form, FormError, choice, text
from core.audit import AuditLog
from core.campaign_holds import HoldChange, HoldTarget, pause, resume
from core.clock import Clock
from core.enums import HoldScope
from core.errors import PermissionDenied
from core.store.models import Department

_SCRIPT_ID_MAX = 64


@dataclass(frozen=True, slots=True)
class HoldForm:
    scope: HoldScope
    department: str  # a department code, for a department hold
    script: str  # a script id, for a script hold
    reason: str

    @classmethod
    def parse(cls, form: Form, *, reason_required: bool) -> HoldForm:
        scope = choice(form, "scope", HoldScope)
        assert scope is not None
        department = text(form, "department", max_len=32,
                          required=scope is HoldScope.DEPARTMENT)
        script = text(form, "script", max_len=_SCRIPT_ID_MAX,
                      required=scope is HoldScope.SCRIPT)
        reason = text(form, "reason", max_len=256, required=reason_required)
        return cls(scope, department, script, reason)


class CampaignControl:
    def __init__(self, clock: Clock, audit: AuditLog) -> None:
        self._clock = clock
        self._audit = audit

    def target(self, session: Session, who: Principal, form: HoldForm) -> HoldTarget:
        """The hold `form` names, if `who` may steer it. Raises PermissionDenied."""
        if form.scope is HoldScope.DEPARTMENT:
            dept_id = session.execute(select(Department.id)
                                      .where(Department.code == form.department)
                                      ).scalar_one_or_none()
            if dept_id is None:
                raise FormError("department", "unknown_choice")
            if who.departments is not None and dept_id not in who.departments:
                raise PermissionDenied(f"{who.username} may not pause {form.department}")
            return HoldTarget(HoldScope.DEPARTMENT, department_id=dept_id)
        if who.departments is not None:
            raise PermissionDenied(f"{who.username} may pause only their departments")
        if form.scope is HoldScope.SCRIPT:
            return HoldTarget(HoldScope.SCRIPT, script_id=form.script)
        return HoldTarget(HoldScope.ALL)

    def pause(self, session: Session, who: Principal, form: HoldForm) -> HoldChange:
        return pause(session, self._audit, self.target(session, who, form),
                     reason=form.reason, actor=who.actor, now=self._clock.now())

    def resume(self, session: Session, who: Principal, form: HoldForm) -> HoldChange:
        return resume(session, self._audit, self.target(session, who, form),
                      actor=who.actor, now=self._clock.now(), reason=form.reason)
