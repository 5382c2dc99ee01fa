"""The planning service: dirty encounters in the store -> the pure planner -> task rows.

`PlanningService.run` streams the patients that have a changed (`plan_dirty`) encounter or
patient row, in patient-id order and in batches. For each batch it loads the patients, all
their encounters and all their tasks, runs `followup_rules.Planner` per patient, and writes
the diff: inserts with ON CONFLICT (plan_key) DO NOTHING, then merges, releases and
cancellations as executemany updates that only ever touch pending or merged tasks, then
clears the patients' `plan_dirty`. A transaction holds several batches (COMMIT_ROWS rows).
Encounters' `plan_dirty` are cleared in sorted, buffered flushes (their ids are scattered
over patients). A flag is only cleared if the row still has the content hash that was read,
so a row the HIS sync changed meanwhile stays dirty. A crash re-plans what was not yet
cleared, harmlessly: every step is idempotent. With many dirty patients, batches are read
and planned by worker processes while this process writes.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
from array import array
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    String,
    Table,
    and_,
    bindparam,
    null,
    or_,
    select,
    true,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased

from core.clock import Clock
from core.domain import EncounterFacts, PatientFacts
from core.enums import CancelReason, EncounterType, Sex, TaskStatus
from core.errors import NotFound
from core.settings import Settings
from core.store.db import Database
from core.store.models import Department, Encounter, FollowupTask, Patient
from followup_rules.explain import Explanation, explain
from followup_rules.loader import check_scripts_exist, load_rule_set
from followup_rules.planner import Planner
from followup_rules.tasks import (
    ExistingTask,
    PlanCounts,
    PlanDiff,
    PlannedTask,
    ScriptCatalog,
)

TASKS: Table = FollowupTask.__table__  # type: ignore[assignment]
ENCOUNTERS: Table = Encounter.__table__  # type: ignore[assignment]
PATIENTS: Table = Patient.__table__  # type: ignore[assignment]
DEPARTMENTS: Table = Department.__table__  # type: ignore[assignment]
DEFAULT_BATCH_PATIENTS = 2000
POOL_MIN_PATIENTS = 100_000  # below this a worker pool (spawn, pickling) costs more than it saves
CLEAR_EVERY = 200_000  # encounter flags buffered before a sorted flush (~30 MB)
COMMIT_ROWS = 60_000  # rows written (tasks + flags) per transaction, several batches
SQLITE_CACHE_KIB = 65_536  # page cache of the planner's SQLite connections


def tune_connection(conn: Connection) -> None:
    """SQLite tuning for big batches of writes: a larger page cache, and WAL checkpoints
    every 40 MB instead of every 4 MB (each checkpoint rewrites the hot index pages)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        conn.exec_driver_sql("PRAGMA wal_autocheckpoint = 10000")


def untune_connection(conn: Connection) -> None:
    """Back to SQLite's defaults before the pooled connection serves anyone else."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA cache_size = -2000")
        conn.exec_driver_sql("PRAGMA wal_autocheckpoint = 1000")


def build_planner(settings: Settings) -> Planner:
    """The planner from the settings: rule files, script versions on disk, contact budget.

    Raises FileValidationError for a bad rule or script file, or a rule naming a script
    that does not exist.
    """
    from ivr.catalog import scan_versions

    rules = load_rule_set(settings.rules.paths, settings.hospital.calling_hours,
                          settings.rules.late_grace_days)
    scripts = ScriptCatalog(scan_versions(Path(settings.scripts.dir)))
    check_scripts_exist(rules, scripts.script_ids(), settings.scripts.dir)
    return Planner(rules, scripts, settings.rules.calls_per_patient_per_day)


# -- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PatientWork:
    """One patient's facts as read, plus the row versions to clear `plan_dirty` on."""

    patient: PatientFacts
    encounters: tuple[EncounterFacts, ...]
    tasks: tuple[ExistingTask, ...]
    departments: dict[int, int]  # encounter id -> department id
    seen: tuple[tuple[str, int, str], ...]  # ("p"|"e", id, content_hash) of dirty rows read


def dirty_patient_ids(conn: Connection) -> array[int]:
    """Every patient with a dirty patient row or encounter, ascending (8 bytes each)."""
    q = (select(ENCOUNTERS.c.patient_id).where(ENCOUNTERS.c.plan_dirty == true())
         .union(select(PATIENTS.c.id).where(PATIENTS.c.plan_dirty == true())))
    sub = q.subquery()
    ids: array[int] = array("q")
    result = conn.execution_options(yield_per=10_000).execute(
        select(sub.c[0]).order_by(sub.c[0]))
    for partition in result.partitions():
        ids.extend(row[0] for row in partition)
    return ids


def load_departments(conn: Connection) -> dict[int, str]:
    return {row.id: row.code for row in conn.execute(select(Department.id, Department.code))}


def load_work(conn: Connection, patient_ids: Sequence[int], departments: dict[int, str],
              diagnoses: bool = True, procedures: bool = True) -> list[PatientWork]:
    """Read the facts and tasks of `patient_ids` (three queries).

    `diagnoses` / `procedures` False skip reading those (JSON) columns when no rule uses them.
    Dates, times and enums are read as plain values and converted here: this is the hot
    path of a full plan, and SQLAlchemy's per-value result processors dominate it.
    """
    ids = list(patient_ids)
    p, e, t = PATIENTS.c, ENCOUNTERS.c, TASKS.c
    # A dense batch (a full plan) is read as an id range and filtered here: a range is far
    # cheaper to compile and run than an IN list of thousands of parameters.
    wanted = set(ids)
    low, high = (min(ids), max(ids)) if ids else (0, -1)
    dense = high - low < 2 * len(ids)

    def of(column: Any) -> Any:
        return column.between(low, high) if dense else column.in_(ids)
    patients = conn.execute(
        select(p.id, p.his_id, _raw(p.birth_date), _raw(p.sex), p.timezone, p.language,
               p.deceased, p.opt_out_phone, p.consent_phone, p.phone, p.plan_dirty,
               p.content_hash)
        .where(of(p.id))).all()
    encounters: dict[int, list[EncounterFacts]] = {}
    seen: dict[int, list[tuple[str, int, str]]] = {}
    dept_of: dict[int, int] = {}
    for (eid, his_id, pid, etype, dept, admit, discharge, diags, procs, disposition, dirty,
         chash) in conn.execute(
            select(e.id, e.his_id, e.patient_id, _raw(e.type), e.department_id,
                   _raw(e.admit_at), _raw(e.discharge_at),
                   e.diagnoses if diagnoses else null(), e.procedures if procedures else null(),
                   e.disposition, e.plan_dirty, e.content_hash)
            .where(of(e.patient_id)).order_by(e.patient_id, e.id)).all():
        if pid not in wanted:
            continue
        encounters.setdefault(pid, []).append(EncounterFacts(
            encounter_id=eid, his_id=his_id, patient_id=pid, type=_ENCOUNTER_TYPES[etype],
            department_code=departments.get(dept, ""), admit_at=_utc(admit),
            discharge_at=_utc(discharge), diagnoses=tuple(diags or ()),
            procedures=tuple(procs or ()), disposition=disposition))
        dept_of[eid] = dept
        if dirty:
            seen.setdefault(pid, []).append(("e", eid, chash))
    tasks: dict[int, list[ExistingTask]] = {}
    host = aliased(FollowupTask)
    for row in conn.execute(
            select(t.patient_id, t.plan_key, t.encounter_id, t.rule_id, t.offset_days,
                   t.script_id, t.due_date, t.priority, t.status, host.plan_key,
                   t.call_scripts)
            .outerjoin(host, host.id == t.merged_into_id)
            .where(of(t.patient_id))).all():
        if row[0] not in wanted:
            continue
        tasks.setdefault(row[0], []).append(ExistingTask(
            plan_key=row[1], encounter_id=row[2], rule_id=row[3], offset_days=row[4],
            script_id=row[5], due_date=row[6], priority=row[7], status=TaskStatus(row[8]),
            merged_into_key=row[9], call_scripts=tuple(row[10] or ())))
    out: list[PatientWork] = []
    for (pid, his_id, birth, sex, tz, language, deceased, opt_out, consent, phone, dirty,
         chash) in patients:
        if pid not in wanted:
            continue
        facts = PatientFacts(
            patient_id=pid, his_id=his_id, birth_date=_date(birth), sex=_SEXES[sex],
            timezone=tz, language=language, deceased=bool(deceased),
            opted_out=bool(opt_out) or not consent, has_phone=bool(phone))
        encs = encounters.get(pid, [])
        marks = seen.get(pid, [])
        if dirty:
            marks.insert(0, ("p", pid, chash))
        out.append(PatientWork(
            patient=facts, encounters=tuple(encs), tasks=tuple(tasks.get(pid, ())),
            departments={enc.encounter_id: dept_of[enc.encounter_id] for enc in encs},
            seen=tuple(marks)))
    return out


_ENCOUNTER_TYPES = {t.value: t for t in EncounterType}
_SEXES = {s.value: s for s in Sex}


def _raw(column: Any) -> Any:
    """Read a column without its result processor (see `_utc`, `_date`)."""
    return type_coerce(column, String()).label(column.key)


def _utc(value: Any) -> dt.datetime | None:
    """A stored UTC timestamp (naive text on SQLite, a datetime on PostgreSQL) as aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):  # SQLite: naive UTC text
        return dt.datetime.fromisoformat(value + "+00:00")
    moment: dt.datetime = value
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _date(value: Any) -> dt.date | None:
    if isinstance(value, str):  # SQLite: ISO text
        return dt.date.fromisoformat(value)
    result: dt.date | None = value
    return result


# -- planning a batch (in this process or a worker) --------------------------------------------


@dataclass
class BatchResult:
    """What one batch wants written: plain rows, cheap to send between processes."""

    creates: list[dict[str, Any]] = field(default_factory=list)  # insert parameters
    links: list[dict[str, str]] = field(default_factory=list)  # new merged task -> its call
    merges: list[tuple[str, str, list[str]]] = field(default_factory=list)
    scripts: list[tuple[str, list[str]]] = field(default_factory=list)
    cancels: list[tuple[str, str]] = field(default_factory=list)
    seen: list[tuple[str, int, str]] = field(default_factory=list)
    counts: PlanCounts = field(default_factory=PlanCounts)


def plan_work(planner: Planner, work: Sequence[PatientWork], now: dt.datetime) -> BatchResult:
    """Run the planner over loaded patients and flatten the diffs into rows."""
    out = BatchResult()
    for w in work:
        diff = planner.plan(w.patient, w.encounters, w.tasks, now)
        out.counts.patients += 1
        out.counts.encounters += len(w.encounters)
        out.seen.extend(w.seen)
        if diff.is_empty:
            continue
        out.counts.add(diff)
        _flatten(diff, w.departments, now, out)
    return out


def _flatten(diff: PlanDiff, departments: dict[int, int], now: dt.datetime,
             out: BatchResult) -> None:
    for c in diff.creates:
        out.creates.append(create_params(c, departments[c.encounter_id], now))
        if c.merged_into_key is not None:
            out.links.append({"k": c.plan_key, "into": c.merged_into_key})
    out.merges.extend((m.plan_key, m.into_key, list(m.call_scripts)) for m in diff.merges)
    out.scripts.extend((s.plan_key, list(s.call_scripts)) for s in diff.call_scripts)
    out.cancels.extend((c.plan_key, c.reason.value) for c in diff.cancels)


# State of a worker process of the planning pool, set by its initializer. (This module-level
# dict lives only in the pool's worker processes: it is how ProcessPoolExecutor hands a
# database and a planner to each of them once, not per task.)
_worker_state: dict[str, Any] = {}


def _worker_init(url: str, planner: Planner) -> None:
    _worker_state["db"] = Database(url)
    _worker_state["planner"] = planner
    with _worker_state["db"].engine.connect() as conn:
        _worker_state["departments"] = load_departments(conn)


def _worker_plan(patient_ids: array[int], now: dt.datetime) -> BatchResult:
    db: Database = _worker_state["db"]
    with db.engine.connect() as conn:
        tune_connection(conn)
        planner: Planner = _worker_state["planner"]
        work = load_work(conn, patient_ids, _worker_state["departments"],
                         planner.uses_diagnoses, planner.uses_procedures)
        conn.rollback()
    return plan_work(_worker_state["planner"], work, now)


# -- writing ---------------------------------------------------------------------------------


class TaskWriter:
    """Applies batch results with executemany statements (one transaction per batch)."""

    def __init__(self, dialect: str, paramstyle: str) -> None:
        self._insert = _insert_ignoring_duplicates(dialect)
        host = TASKS.alias("host")

        def host_id(name: str) -> Any:
            return (select(host.c.id).where(host.c.plan_key == bindparam(name))
                    .scalar_subquery())

        # (no IN: executemany cannot expand lists)
        mutable = and_(TASKS.c.plan_key == bindparam("k"),
                       or_(TASKS.c.status == TaskStatus.PENDING,
                           TASKS.c.status == TaskStatus.MERGED))
        self._merge = update(TASKS).where(mutable).values(
            status=TaskStatus.MERGED, merged_into_id=host_id("into"),
            call_scripts=bindparam("cs"), updated_at=bindparam("now"))
        self._link = update(TASKS).where(
            TASKS.c.plan_key == bindparam("k"), TASKS.c.status == TaskStatus.MERGED,
            TASKS.c.merged_into_id.is_(None)).values(merged_into_id=host_id("into"))
        self._scripts = update(TASKS).where(mutable).values(
            status=TaskStatus.PENDING, merged_into_id=None, call_scripts=bindparam("cs"),
            updated_at=bindparam("now"))
        self._cancel = update(TASKS).where(mutable).values(
            status=TaskStatus.CANCELLED, cancel_reason=bindparam("reason"), merged_into_id=None,
            closed_at=bindparam("now"), updated_at=bindparam("now"))
        # Clearing plan_dirty touches every row read, so it skips SQLAlchemy's per-row
        # parameter processing: plain driver executemany. A row changed since it was read
        # (another content_hash) stays dirty and is planned next time.
        mark = "?" if paramstyle == "qmark" else "%s"
        self._clear_sql = {
            "p": "UPDATE patients SET plan_dirty = ? WHERE id = ? AND content_hash = ?",
            "e": "UPDATE encounters SET plan_dirty = ? WHERE id = ? AND content_hash = ?",
        }
        self._clear_sql = {k: v.replace("?", mark) for k, v in self._clear_sql.items()}

    def write(self, conn: Connection, result: BatchResult, now: dt.datetime) -> None:
        if result.creates:
            conn.execute(self._insert, result.creates)
        if result.links:
            conn.execute(self._link, result.links)
        if result.merges:
            conn.execute(self._merge, [{"k": k, "into": into, "cs": cs, "now": now}
                                       for k, into, cs in result.merges])
        if result.scripts:
            conn.execute(self._scripts, [{"k": k, "cs": cs, "now": now}
                                         for k, cs in result.scripts])
        if result.cancels:
            conn.execute(self._cancel, [{"k": k, "reason": CancelReason(r), "now": now}
                                        for k, r in result.cancels])
        patients = [(False, i, h) for k, i, h in result.seen if k == "p"]
        if patients:
            conn.exec_driver_sql(self._clear_sql["p"], patients)

    def clear_encounters(self, conn: Connection, seen: list[tuple[int, str]]) -> None:
        """Clear `plan_dirty` on encounters read with these content hashes, in id order.

        Encounter ids are scattered over patients, so clearing them batch by batch would
        rewrite the same table pages again and again; sorted and buffered, each page is
        written about once per flush.
        """
        seen.sort()
        conn.exec_driver_sql(self._clear_sql["e"], [(False, i, h) for i, h in seen])


def create_params(task: PlannedTask, department_id: int, now: dt.datetime) -> dict[str, Any]:
    """The insert parameters of one planned task."""
    return {
        "plan_key": task.plan_key, "patient_id": task.patient_id,
        "encounter_id": task.encounter_id, "department_id": department_id,
        "rule_id": task.rule_id, "offset_days": task.offset_days, "script_id": task.script_id,
        "script_version": task.script_version, "call_scripts": list(task.call_scripts),
        "due_date": task.due_date, "calling_window": task.calling_window,
        "timezone": task.timezone, "window_start": task.window_start,
        "window_end": task.window_end, "priority": task.priority,
        "status": task.status.value, "cancel_reason": None, "merged_into_id": None,
        "attempts": 0, "max_attempts": task.max_attempts,
        "next_attempt_at": task.window_start, "created_at": now, "updated_at": now,
    }


def _insert_ignoring_duplicates(dialect: str) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(TASKS).on_conflict_do_nothing(index_elements=["plan_key"])
    if dialect == "sqlite":
        return sqlite.insert(TASKS).on_conflict_do_nothing(index_elements=["plan_key"])
    raise NotImplementedError(f"planning does not support the {dialect} dialect")


# -- the service -----------------------------------------------------------------------------


class PlanningService:
    """Plans follow-up tasks for every patient with changed facts. See the module doc."""

    def __init__(self, db: Database, planner: Planner, clock: Clock,
                 batch_patients: int = DEFAULT_BATCH_PATIENTS, workers: int | None = None,
                 pool_min_patients: int = POOL_MIN_PATIENTS,
                 clear_every: int = CLEAR_EVERY, commit_rows: int = COMMIT_ROWS) -> None:
        self._db = db
        self._planner = planner
        self._clock = clock
        self._batch = batch_patients
        # `workers` processes read and plan while this one writes; 0 plans in this process.
        self._workers = workers if workers is not None else max(1, (os.cpu_count() or 1) - 1)
        self._pool_min = pool_min_patients
        self._clear_every = clear_every
        self._commit_rows = commit_rows
        self._writer = TaskWriter(db.dialect, db.engine.dialect.paramstyle)

    def mark_all_dirty(self) -> None:
        """Make the next run re-plan everyone (after the rules or scripts changed)."""
        with self._db.engine.begin() as conn:
            conn.execute(update(PATIENTS).values(plan_dirty=True))

    def run(self, everyone: bool = False) -> PlanCounts:
        """Plan every dirty patient; returns the totals. Raises StoreError subclasses."""
        if everyone:
            self.mark_all_dirty()
        now = self._clock.now()
        with self._db.engine.connect() as conn:
            ids = dirty_patient_ids(conn)
            departments = load_departments(conn)
        counts = PlanCounts()
        batches = [ids[i:i + self._batch] for i in range(0, len(ids), self._batch)]
        results = (self._pooled(batches, now) if self._workers >= 1 and len(ids) >= self._pool_min
                   else self._inline(batches, departments, now))
        # Encounter flags are cleared in sorted flushes (see TaskWriter.clear_encounters). A
        # crash before a flush leaves them dirty: the next run re-plans them, harmlessly.
        encounters_seen: list[tuple[int, str]] = []
        with self._db.engine.connect() as conn:
            tune_connection(conn)
            pending_rows = 0
            for result in results:
                # Several batches share a transaction (about COMMIT_ROWS rows): each commit
                # may checkpoint the WAL, rewriting the same index pages again.
                self._writer.write(conn, result, now)
                pending_rows += len(result.creates) + len(result.seen)
                encounters_seen.extend((i, h) for k, i, h in result.seen if k == "e")
                if len(encounters_seen) >= self._clear_every:
                    self._writer.clear_encounters(conn, encounters_seen)
                    encounters_seen.clear()
                if pending_rows >= self._commit_rows:
                    conn.commit()
                    pending_rows = 0
                counts.merge_from(result.counts)
            if encounters_seen:
                self._writer.clear_encounters(conn, encounters_seen)
            conn.commit()
            untune_connection(conn)
        return counts

    def _inline(self, batches: list[array[int]], departments: dict[int, str],
                now: dt.datetime) -> Iterator[BatchResult]:
        for batch in batches:
            with self._db.engine.connect() as conn:
                work = load_work(conn, batch, departments, self._planner.uses_diagnoses,
                                 self._planner.uses_procedures)
            yield plan_work(self._planner, work, now)

    def _pooled(self, batches: list[array[int]], now: dt.datetime) -> Iterator[BatchResult]:
        """Workers read and plan; this process writes, in batch order, a few batches behind."""
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(self._workers, mp_context=ctx, initializer=_worker_init,
                                 initargs=(self._db.url, self._planner)) as pool:
            pending: list[Future[BatchResult]] = []
            ahead = self._workers * 2
            for batch in batches:
                pending.append(pool.submit(_worker_plan, batch, now))
                if len(pending) > ahead:
                    yield pending.pop(0).result()
            for fut in pending:
                yield fut.result()

    def explain(self, patient_ref: str) -> Explanation:
        """Why each rule did or did not make tasks for one patient (his_id or MRN).

        Raises NotFound if no patient has that HIS id or MRN.
        """
        with self._db.engine.connect() as conn:
            pid = conn.execute(
                select(PATIENTS.c.id).where(or_(PATIENTS.c.his_id == patient_ref,
                                                PATIENTS.c.mrn == patient_ref))
                .order_by(PATIENTS.c.id).limit(1)).scalar_one_or_none()
            if pid is None:
                raise NotFound(f"no patient with HIS id or MRN {patient_ref!r}")
            work = load_work(conn, [pid], load_departments(conn))[0]
        return explain(self._planner, work.patient, work.encounters, work.tasks,
                       self._clock.now())
