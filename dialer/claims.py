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
from typing import IO, Any

from sqlalchemy import Connection, Row, Select, Table, bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from core.calling_window import CallingRules, parse_calling_window, zone
from core.campaign_holds import NO_HOLDS, Holds, holds_in_force
from core.do_not_call import blocked
from core.enums import AttemptStatus, CancelReason, DncReason, EncounterType, TaskStatus
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


TASKS: Table = FollowupTask.__table__  # type: ignore[assignment]
PATIENTS: Table = Patient.__table__  # type: ignore[assignment]
# The claim runs whenever a channel frees up, usually for one task: its statements are built
# once, over the tables, so a claim costs database work rather than ORM bookkeeping.
# Most urgent first is (priority, next_attempt_at, id) among the due tasks. Sorting every due
# task on each claim costs O(due) (6.6 ms a claim with a backlog of 20,000); instead the
# claim walks the priority levels in use (`_LEVELS`: one index seek per level, along
# ix_tasks_claim_order) and reads each level's due tasks as one index range (`_DUE`), until
# it has enough.
_LEVEL_FROM = select(func.min(TASKS.c.priority).label("p")).where(
    TASKS.c.status == TaskStatus.PENDING).cte("levels", recursive=True)
_ABOVE = TASKS.alias("above")
_LEVELS_CTE = _LEVEL_FROM.union_all(
    select(select(func.min(_ABOVE.c.priority))
           .where(_ABOVE.c.status == TaskStatus.PENDING, _ABOVE.c.priority > _LEVEL_FROM.c.p)
           .scalar_subquery())
    .where(_LEVEL_FROM.c.p.is_not(None)))
_LEVELS = (select(_LEVELS_CTE.c.p).where(_LEVELS_CTE.c.p.is_not(None))
           .order_by(_LEVELS_CTE.c.p))
_DUE = (
    select(TASKS.c.id, TASKS.c.patient_id, TASKS.c.encounter_id, TASKS.c.department_id,
           TASKS.c.calling_window, TASKS.c.timezone, TASKS.c.attempts, TASKS.c.max_attempts,
           TASKS.c.priority, TASKS.c.script_id, TASKS.c.script_version, TASKS.c.call_scripts,
           PATIENTS.c.phone, PATIENTS.c.language, PATIENTS.c.timezone.label("patient_tz"),
           PATIENTS.c.deceased, PATIENTS.c.opt_out_phone, PATIENTS.c.consent_phone)
    .join(PATIENTS, PATIENTS.c.id == TASKS.c.patient_id)
    .where(TASKS.c.status == TaskStatus.PENDING, TASKS.c.priority == bindparam("d_level"),
           TASKS.c.next_attempt_at <= bindparam("d_now"))
    .order_by(TASKS.c.next_attempt_at, TASKS.c.id)
    .limit(bindparam("d_limit")))
_CLAIM = (update(TASKS)
          .where(TASKS.c.id == bindparam("c_id"), TASKS.c.status == TaskStatus.PENDING)
          .values(status=TaskStatus.CLAIMED, lease_owner=bindparam("c_owner"),
                  lease_expires_at=bindparam("c_until"), updated_at=bindparam("c_now")))
_CANCEL = (update(TASKS).where(TASKS.c.id == bindparam("x_id"))
           .values(status=TaskStatus.CANCELLED, cancel_reason=bindparam("x_reason"),
                   closed_at=bindparam("x_now"), updated_at=bindparam("x_now")))
_DEFER = (update(TASKS).where(TASKS.c.id == bindparam("x_id"))
          .values(next_attempt_at=bindparam("x_next"), updated_at=bindparam("x_now")))
DueRow = Row[*tuple[Any, ...]]
"""A row of `_DUE`: a due task with what the claim checks of its patient."""
ATTEMPTS: Table = CallAttempt.__table__  # type: ignore[assignment]
ENCOUNTERS: Table = Encounter.__table__  # type: ignore[assignment]
# calls that rang, or may have rung, a patient's phone since `r_since`: dialled ones, and the
# live or unknown ones whose dialling is not recorded yet (a call cut off by a crash counts
# before any cleanup has run)
_RECENT_CALLS = (
    select(ATTEMPTS.c.patient_id, ATTEMPTS.c.created_at)
    .where(ATTEMPTS.c.patient_id.in_(bindparam("r_ids", expanding=True)),
           or_(ATTEMPTS.c.dialled.is_(True),
               ATTEMPTS.c.status.in_([AttemptStatus.DIALING, AttemptStatus.IN_CALL,
                                      AttemptStatus.UNKNOWN])),
           ATTEMPTS.c.created_at >= bindparam("r_since")))
_IN_HOSPITAL = (
    select(ENCOUNTERS.c.patient_id)
    .where(ENCOUNTERS.c.patient_id.in_(bindparam("h_ids", expanding=True)),
           ENCOUNTERS.c.type == EncounterType.INPATIENT, ENCOUNTERS.c.discharge_at.is_(None)))
_NEXT_DUE = select(func.min(TASKS.c.next_attempt_at)).where(TASKS.c.status == TaskStatus.PENDING)
_DNC_CANCEL = {DncReason.WRONG_NUMBER: CancelReason.WRONG_NUMBER}
_MERGED_VERSIONS = (select(TASKS.c.script_id, TASKS.c.script_version)
                    .where(TASKS.c.merged_into_id == bindparam("m_id")))


def _without_held(stmt: Select[Any], holds: Holds) -> Select[Any]:
    """`stmt` (over the tasks) without the tasks a department or script hold covers."""
    if holds.departments:
        stmt = stmt.where(TASKS.c.department_id.not_in(sorted(holds.departments)))
    if holds.scripts:
        stmt = stmt.where(TASKS.c.script_id.not_in(sorted(holds.scripts)))
    return stmt


def _scripts_of(task: DueRow) -> list[str]:
    return [str(x) for x in task.call_scripts] if task.call_scripts else [task.script_id]


def call_script_versions(s: Connection, task: DueRow) -> tuple[tuple[str, int], ...]:
    """The scripts this task's call asks, in order, each with the version its own task
    was planned with (merged tasks keep theirs). `task` is a row of `_DUE`."""
    versions = {task.script_id: task.script_version}
    if task.call_scripts and len(task.call_scripts) > 1:
        for script_id, version in s.execute(_MERGED_VERSIONS, {"m_id": task.id}):
            versions.setdefault(script_id, version)
    order = _scripts_of(task)
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
        # the holds (pauses) the last claim found: while any is in force the campaign
        # looks again every few seconds, so a resume is obeyed promptly
        self.holds: Holds = NO_HOLDS

    def claim(self, now: dt.datetime, limit: int) -> list[ClaimedTask]:
        """Claim up to `limit` due tasks, most urgent first. Suppressed tasks are cancelled
        and out-of-window ones deferred on the way. The checks read the whole batch at once
        (a query per check, not per task), in the claim's own transaction, so the daily cap
        counts every call another dialer committed before this claim. Tasks a hold (a
        pause, `core.campaign_holds`) covers are left pending; numbers on the do-not-call
        list cancel their tasks."""
        if limit <= 0:
            return []
        claimed: list[ClaimedTask] = []
        with self._db.connection() as s:
            self.holds = holds = holds_in_force(s)
            if holds.everything:
                return []
            rows = self._due(s, now, limit * 4, holds)
            patient_ids = list({row.patient_id for row in rows})
            in_hospital = self._in_hospital(s, patient_ids)
            recent_calls = self._recent_calls(s, patient_ids, now)
            dnc = blocked(s, {row.phone for row in rows if row.phone}, now)
            for task in rows:
                if len(claimed) >= limit:
                    break
                if holds.covers(task.department_id, _scripts_of(task)):
                    continue  # a merged call asks a paused script
                reason = self._suppression(task, in_hospital, dnc)
                if reason is not None:
                    s.execute(_CANCEL, {"x_id": task.id, "x_reason": reason, "x_now": now})
                    continue
                window = parse_calling_window(task.calling_window)
                if not self._rules.allowed(window, task.timezone, now, self._hospital_tz):
                    nxt = self._rules.next_allowed(window, task.timezone, now, self._hospital_tz)
                    s.execute(_DEFER, {"x_id": task.id, "x_now": now,
                                       "x_next": nxt or now + dt.timedelta(days=1)})
                    continue
                tomorrow = _next_local_midnight(now, task.patient_tz)
                midnight = tomorrow - dt.timedelta(days=1)
                today = sum(1 for at in recent_calls.get(task.patient_id, ()) if at >= midnight)
                if today >= self._rules.max_calls_per_patient_per_day:
                    nxt = self._rules.next_allowed(window, task.timezone, tomorrow,
                                                   self._hospital_tz)
                    s.execute(_DEFER, {"x_id": task.id, "x_now": now, "x_next": nxt or tomorrow})
                    continue
                try:
                    with s.begin_nested():
                        s.execute(_CLAIM, {"c_id": task.id, "c_owner": self.owner,
                                           "c_until": now + self._lease, "c_now": now})
                except IntegrityError:
                    continue  # the patient already has a claimed task (another dialer's)
                assert task.phone is not None
                claimed.append(ClaimedTask(
                    task_id=task.id, patient_id=task.patient_id, encounter_id=task.encounter_id,
                    department_id=task.department_id, phone=task.phone,
                    language=task.language, timezone=task.patient_tz,
                    call_scripts=call_script_versions(s, task),
                    attempts=task.attempts, max_attempts=task.max_attempts,
                    priority=task.priority))
        return claimed

    def _due(self, s: Connection, now: dt.datetime, limit: int, holds: Holds) -> list[DueRow]:
        """Up to `limit` due tasks no hold covers, most urgent first (PostgreSQL: locked,
        skipping rows another dialer is claiming)."""
        due = _without_held(_DUE, holds)
        if self._db.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True, of=TASKS)
        rows: list[DueRow] = []
        for level in s.execute(_LEVELS).scalars().all():
            rows += s.execute(due, {"d_level": level, "d_now": now,
                                    "d_limit": limit - len(rows)}).all()
            if len(rows) >= limit:
                break
        return rows

    @staticmethod
    def _recent_calls(s: Connection, patient_ids: list[int], now: dt.datetime
                      ) -> dict[int, list[dt.datetime]]:
        """When each patient's phone rang, or may have rung, in the last two days (two
        days cover every time zone's "today")."""
        out: dict[int, list[dt.datetime]] = {}
        if patient_ids:
            for patient_id, created_at in s.execute(_RECENT_CALLS, {
                    "r_ids": patient_ids, "r_since": now - dt.timedelta(days=2)}):
                out.setdefault(patient_id, []).append(created_at)
        return out

    @staticmethod
    def _in_hospital(s: Connection, patient_ids: list[int]) -> set[int]:
        """The patients among `patient_ids` who are in hospital now (an inpatient stay with
        no discharge)."""
        if not patient_ids:
            return set()
        return set(s.execute(_IN_HOSPITAL, {"h_ids": patient_ids}).scalars())

    @staticmethod
    def _suppression(task: DueRow, in_hospital: set[int],
                     dnc: dict[str, DncReason]) -> CancelReason | None:
        """Why the patient of `task` (a row of `_DUE`) must not be called, if so."""
        if task.deceased:
            return CancelReason.DECEASED
        if task.opt_out_phone or not task.consent_phone:
            return CancelReason.OPTED_OUT
        if not task.phone:
            return CancelReason.NO_PHONE
        if task.phone in dnc:
            return _DNC_CANCEL.get(dnc[task.phone], CancelReason.DO_NOT_CALL)
        return CancelReason.READMITTED if task.patient_id in in_hospital else None

    def next_due(self) -> dt.datetime | None:
        """When the next pending task no hold covers becomes due (None: no such work)."""
        with self._db.connection() as conn:
            holds = holds_in_force(conn)
            if holds.everything:
                return None
            due: dt.datetime | None = conn.execute(_without_held(_NEXT_DUE, holds)
                                                   ).scalar_one()
            return due

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
