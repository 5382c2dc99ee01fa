"""The do-not-call list in the console: the page's rows, adding, removing and importing.

The list is hospital-wide (numbers, not departments): whoever holds `Permission.DNC` reads
and adds to all of it, and `Permission.DNC_REMOVE` takes entries off. A linked patient's
name is shown only to users who may see that patient (an encounter or a follow-up in their
departments); the others read the number alone. The entries themselves, their audit and the
CSV rules are `core.do_not_call`'s.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection
from dataclasses import dataclass, replace

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from console.access import Principal
from console.actors import actor_display
from console.forms import Form, FormError, choice, date, text
from console.periods import local_today
from core.audit import AuditLog
from core.clock import Clock
from core.do_not_call import (
    NOTE_MAX,
    WHY_MAX,
    CsvRefused,
    DncChange,
    DncRow,
    ImportResult,
    add,
    decode_csv,
    entry_in_force,
    expiry,
    import_csv,
    listing,
    on_list,
    remove,
)
from core.enums import DncReason, DncSource
from core.phones import to_e164
from core.store.models import Encounter, FollowupTask, Patient

PAGE_LIMIT = 500  # entries on the page; a search narrows a longer list
_PHONE_CHARS = re.compile(r"[0-9+\-() \u3000（）.]{3,32}")


@dataclass(frozen=True, slots=True)
class DncForm:
    """A number to add, parsed: `phone` in E.164, `expires_on` the local day it lapses."""

    phone: str
    reason: DncReason
    note: str
    expires_on: dt.date | None

    @classmethod
    def parse(cls, form: Form, *, region: str, today: dt.date) -> DncForm:
        raw = text(form, "phone", max_len=32, required=True)
        phone = to_e164(raw, region) if _PHONE_CHARS.fullmatch(raw) else None
        if phone is None:
            raise FormError("phone", "not_a_phone")
        reason = choice(form, "reason", DncReason)
        assert reason is not None
        note = text(form, "note", max_len=NOTE_MAX)
        expires_on = date(form, "expires") if str(form.get("expires", "")).strip() else None
        if expires_on is not None and expires_on <= today:
            raise FormError("expires", "not_after_today")
        return cls(phone, reason, note, expires_on)


def removal_reason(form: Form) -> str:
    """Why an entry is taken off the list (required)."""
    return text(form, "why", max_len=WHY_MAX, required=True)


def _visible_patients(session: Session, who: Principal, ids: Collection[int]) -> set[int]:
    """Those of `ids` that `who` may see: an encounter or a follow-up in their departments."""
    if not ids:
        return set()
    if who.departments is None:
        return set(ids)
    wanted = sorted(ids)
    return set(session.execute(select(Patient.id).where(Patient.id.in_(wanted), or_(
        Patient.id.in_(select(Encounter.patient_id).where(
            Encounter.patient_id.in_(wanted), who.scope(Encounter.department_id))),
        Patient.id.in_(select(FollowupTask.patient_id).where(
            FollowupTask.patient_id.in_(wanted), who.scope(FollowupTask.department_id))))
    )).scalars())


@dataclass(frozen=True, slots=True)
class DncPage:
    rows: tuple[DncRow, ...]
    names: dict[str, str]  # actor -> display name
    truncated: bool  # more entries match than the page shows


class DncDesk:
    """The console's do-not-call actions, audited as the signed-in user."""

    def __init__(self, clock: Clock, audit: AuditLog, timezone: str, region: str) -> None:
        self._clock = clock
        self._audit = audit
        self._timezone = timezone
        self.region = region

    def today(self) -> dt.date:
        return local_today(self._clock.now(), self._timezone)

    def page(self, session: Session, who: Principal, q: str, include_removed: bool,
             lang: str) -> DncPage:
        """The entries matching `q` (in force, or all), with names only where `who` may
        see the patient."""
        rows = listing(session, self._clock.now(), q, include_removed, PAGE_LIMIT + 1,
                       region=self.region)
        return self._shown(session, who, rows[:PAGE_LIMIT], lang, len(rows) > PAGE_LIMIT)

    def for_patient(self, session: Session, who: Principal, patient: Patient,
                    lang: str) -> DncPage:
        """The entries in force for the patient's numbers."""
        rows = on_list(session, [p for p in (patient.phone, patient.phone_alt) if p],
                       self._clock.now())
        return self._shown(session, who, rows, lang, False)

    def _shown(self, session: Session, who: Principal, rows: list[DncRow], lang: str,
               truncated: bool) -> DncPage:
        seen = _visible_patients(session, who,
                                 {r.patient_id for r in rows if r.patient_id is not None})
        shown = tuple(r if r.patient_id in seen else replace(r, patient_id=None,
                                                             patient_name=None)
                      for r in rows)
        actors = [a for r in rows for a in (r.added_by, r.removed_by) if a]
        return DncPage(shown, actor_display(session, actors, lang), truncated)

    def add(self, session: Session, who: Principal, form: DncForm) -> bool:
        """Put the number on the list; False when it was already there for that reason."""
        now = self._clock.now()
        if entry_in_force(session, form.phone, form.reason, now) is not None:
            return False
        add(session, self._audit, phone=form.phone, reason=form.reason,
            source=DncSource.CONSOLE, actor=who.actor, now=now, note=form.note,
            expires_at=expiry(form.expires_on, self._timezone) if form.expires_on else None)
        return True

    def remove(self, session: Session, who: Principal, entry_id: int, why: str) -> DncChange:
        """Raises NotFound for an unknown entry."""
        return remove(session, self._audit, entry_id, who.actor, self._clock.now(), why)

    def import_file(self, session: Session, who: Principal, data: bytes) -> ImportResult:
        """Raises FormError (field `file`) for a file that is not a readable CSV list."""
        try:
            return import_csv(session, self._audit, decode_csv(data), who.actor,
                              self._clock.now(), self.region, timezone=self._timezone)
        except CsvRefused as exc:
            raise FormError("file", f"csv_{exc.problem.value}") from exc
