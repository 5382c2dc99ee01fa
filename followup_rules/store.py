"""The planner's persistence: dirty encounters in the store -> the pure planner -> task rows.

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

The service is here; reading is `followup_rules.work_loader`, flattening and writing
`followup_rules.task_writer`. The planner itself (`followup_rules.planner`) stays pure.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
from array import array
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from sqlalchemy import Connection, Table, or_, select, update

from core.clock import Clock
from core.errors import NotFound
from core.store.db import Database
from core.store.models import Patient
from followup_rules.explain import Explanation, explain
from followup_rules.planner import Planner
from followup_rules.task_writer import BatchResult, TaskWriter, plan_work
from followup_rules.tasks import PlanCounts
from followup_rules.work_loader import dirty_patient_ids, load_departments, load_work

PATIENTS: Table = Patient.__table__  # type: ignore[assignment]
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
