"""Writing what the planner decided: plan diffs flattened into rows, then applied in bulk.

`plan_work` runs the pure planner over loaded patients and flattens each `PlanDiff` into a
`BatchResult` of plain rows (cheap to send from a worker process). `TaskWriter` applies a
batch with executemany statements that only ever touch pending or merged tasks, and clears
`plan_dirty` on the rows read, unless a row changed since it was read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from core.enums import CancelReason, TaskStatus
from core.store.models import FollowupTask
from followup_rules.planner import Planner
from followup_rules.tasks import PlanCounts, PlanDiff, PlannedTask
from followup_rules.work_loader import PatientWork

TASKS: Table = FollowupTask.__table__  # type: ignore[assignment]


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
