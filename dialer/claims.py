"""Claiming due tasks with a lease, and giving back the leases of the dead.

PostgreSQL: several dialer processes claim with `FOR UPDATE SKIP LOCKED`. SQLite: exactly
one dialer process, enforced with an exclusive lock file beside the database (released by
the kernel even on SIGKILL). Either way the database's partial unique index allows one
claimed task per patient, so two dialers can never call one patient at once.

Right before a task is handed out it is re-checked: deceased, opted out, no phone, or in
hospital now (an open inpatient stay) cancels it with the reason; outside the patient's
calling window, the hospital's calling hours or on a holiday, it is deferred to the next
opening.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.calling_window import CallingWindow, parse_calling_window, zone
from core.enums import AttemptStatus, CancelReason, EncounterType, TaskStatus
from core.errors import FollowupError
from core.store.db import Database
from core.store.models import CallAttempt, Encounter, FollowupTask, Patient


class DialerAlreadyRunning(FollowupError):
    code = "dialer_already_running"


@dataclass(frozen=True, slots=True)
class ClaimedTask:
    """A task leased to this dialer, with what the call needs to know."""

    task_id: int
    patient_id: int
    encounter_id: int
    department_id: int
    phone: str
    language: str
    timezone: str
    call_scripts: tuple[tuple[str, int], ...]
    attempts: int
    max_attempts: int
    priority: int


@dataclass(frozen=True)
class CallingRules:
    """Where and when calls may be made, besides each task's own window."""

    hospital_hours: CallingWindow
    holidays: frozenset[dt.date]
    max_calls_per_patient_per_day: int = 3

    @classmethod
    def from_settings(cls, hours: str, holidays: list[str],
                      max_calls_per_patient_per_day: int = 3) -> CallingRules:
        return cls(parse_calling_window(hours),
                   frozenset(dt.date.fromisoformat(d) for d in holidays),
                   max_calls_per_patient_per_day)

    def allowed(self, window: CallingWindow, timezone: str, now: dt.datetime,
                hospital_tz: str) -> bool:
        local_day = now.astimezone(zone(timezone)).date()
        return (local_day not in self.holidays and window.contains(now, timezone)
                and self.hospital_hours.contains(now, hospital_tz))

    def next_allowed(self, window: CallingWindow, timezone: str, after: dt.datetime,
                     hospital_tz: str) -> dt.datetime | None:
        """The first instant >= after inside both windows, skipping holidays."""
        t: dt.datetime | None = after
        for _ in range(64):
            if t is None:
                return None
            t = window.next_opening(t, timezone, skip=self.holidays)
            if t is None:
                return None
            h = self.hospital_hours.next_opening(t, hospital_tz, skip=self.holidays)
            if h is None:
                return None
            if h == t:
                return t
            t = h
        return None


def call_script_versions(s: Session, task: FollowupTask) -> tuple[tuple[str, int], ...]:
    """The scripts this task's call asks, in order, each with the version its own task
    was planned with (merged tasks keep theirs)."""
    versions = {task.script_id: task.script_version}
    if task.call_scripts and len(task.call_scripts) > 1:
        rows = s.execute(select(FollowupTask.script_id, FollowupTask.script_version)
                         .where(FollowupTask.merged_into_id == task.id)).all()
        for script_id, version in rows:
            versions.setdefault(script_id, version)
    order = [str(x) for x in task.call_scripts] if task.call_scripts else [task.script_id]
    return tuple((sid, versions.get(sid, task.script_version)) for sid in order)


def _next_local_midnight(now: dt.datetime, timezone: str) -> dt.datetime:
    """The next local midnight after `now` in `timezone`, as UTC (DST-safe enough: a day
    that starts in a gap starts when the clock jumps)."""
    tz = zone(timezone)
    day = now.astimezone(tz).date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(0, 0), tz).astimezone(dt.UTC)


class SingleDialerLock:
    """An exclusive lock file: one dialer per SQLite store (flock dies with the process)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the process life
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            fh.close()
            raise DialerAlreadyRunning(
                f"another dialer holds {self.path}: SQLite allows one dialer process "
                "(use PostgreSQL for several)") from exc
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


class TaskClaimer:
    """Hands out due tasks under a lease; one instance per dialer process."""

    def __init__(self, db: Database, owner: str, lease: dt.timedelta, rules: CallingRules,
                 hospital_tz: str) -> None:
        self._db = db
        self.owner = owner
        self._lease = lease
        self._rules = rules
        self._hospital_tz = hospital_tz

    def claim(self, now: dt.datetime, limit: int) -> list[ClaimedTask]:
        """Claim up to `limit` due tasks, most urgent first. Suppressed tasks are cancelled
        and out-of-window ones deferred on the way."""
        if limit <= 0:
            return []
        claimed: list[ClaimedTask] = []
        with self._db.session() as s:
            q = (
                select(FollowupTask, Patient)
                .join(Patient, Patient.id == FollowupTask.patient_id)
                .where(FollowupTask.status == TaskStatus.PENDING,
                       FollowupTask.next_attempt_at <= now)
                .order_by(FollowupTask.priority, FollowupTask.next_attempt_at, FollowupTask.id)
                .limit(limit * 4)
            )
            if self._db.dialect == "postgresql":
                q = q.with_for_update(skip_locked=True, of=FollowupTask)
            for task, patient in s.execute(q).all():
                if len(claimed) >= limit:
                    break
                reason = self._suppression(s, patient)
                if reason is not None:
                    task.status = TaskStatus.CANCELLED
                    task.cancel_reason = reason
                    task.closed_at = now
                    task.updated_at = now
                    continue
                window = parse_calling_window(task.calling_window)
                if not self._rules.allowed(window, task.timezone, now, self._hospital_tz):
                    nxt = self._rules.next_allowed(window, task.timezone, now, self._hospital_tz)
                    task.next_attempt_at = nxt or now + dt.timedelta(days=1)
                    task.updated_at = now
                    continue
                if self._calls_today(s, patient, now) >= self._rules.max_calls_per_patient_per_day:
                    tomorrow = _next_local_midnight(now, patient.timezone)
                    nxt = self._rules.next_allowed(window, task.timezone, tomorrow,
                                                   self._hospital_tz)
                    task.next_attempt_at = nxt or tomorrow
                    task.updated_at = now
                    continue
                try:
                    with s.begin_nested():
                        s.execute(update(FollowupTask)
                                  .where(FollowupTask.id == task.id,
                                         FollowupTask.status == TaskStatus.PENDING)
                                  .values(status=TaskStatus.CLAIMED, lease_owner=self.owner,
                                          lease_expires_at=now + self._lease, updated_at=now))
                except IntegrityError:
                    continue  # the patient already has a claimed task (another dialer's)
                assert patient.phone is not None
                claimed.append(ClaimedTask(
                    task_id=task.id, patient_id=patient.id, encounter_id=task.encounter_id,
                    department_id=task.department_id, phone=patient.phone,
                    language=patient.language, timezone=patient.timezone,
                    call_scripts=call_script_versions(s, task),
                    attempts=task.attempts, max_attempts=task.max_attempts,
                    priority=task.priority))
        return claimed

    @staticmethod
    def _calls_today(s: Session, patient: Patient, now: dt.datetime) -> int:
        """Calls that rang, or may have rung, this patient's phone today (the patient's
        local day): dialled ones, and the live or unknown ones whose dialling is not
        recorded yet (a call cut off by a crash counts before any cleanup has run)."""
        midnight = _next_local_midnight(now, patient.timezone) - dt.timedelta(days=1)
        return int(s.execute(select(func.count()).select_from(CallAttempt).where(
            CallAttempt.patient_id == patient.id,
            or_(CallAttempt.dialled.is_(True),
                CallAttempt.status.in_([AttemptStatus.DIALING, AttemptStatus.IN_CALL,
                                        AttemptStatus.UNKNOWN])),
            CallAttempt.created_at >= midnight)).scalar_one())

    @staticmethod
    def _suppression(s: Session, patient: Patient) -> CancelReason | None:
        if patient.deceased:
            return CancelReason.DECEASED
        if patient.opt_out_phone or not patient.consent_phone:
            return CancelReason.OPTED_OUT
        if not patient.phone:
            return CancelReason.NO_PHONE
        in_hospital = s.execute(select(exists().where(and_(
            Encounter.patient_id == patient.id,
            Encounter.type == EncounterType.INPATIENT,
            Encounter.discharge_at.is_(None))))).scalar_one()
        return CancelReason.READMITTED if in_hospital else None

    def next_due(self) -> dt.datetime | None:
        """When the next pending task becomes due (None: no pending work at all)."""
        with self._db.session() as s:
            return s.execute(select(func.min(FollowupTask.next_attempt_at))
                             .where(FollowupTask.status == TaskStatus.PENDING)).scalar_one()

    def renew(self, task_ids: list[int], now: dt.datetime) -> int:
        """Extend this dialer's leases on calls still in progress."""
        if not task_ids:
            return 0
        with self._db.session() as s:
            result = s.execute(update(FollowupTask)
                               .where(FollowupTask.id.in_(task_ids),
                                      FollowupTask.lease_owner == self.owner,
                                      FollowupTask.status == TaskStatus.CLAIMED)
                               .values(lease_expires_at=now + self._lease))
            return int(result.rowcount)  # type: ignore[attr-defined]
