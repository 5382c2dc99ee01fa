"""Reading the planner's inputs from the store: the dirty patients, their facts and tasks.

`load_work` turns store rows into the planner's plain values (`PatientFacts`,
`EncounterFacts`, `ExistingTask`) plus the row versions (`content_hash`) read, so that
`plan_dirty` is later cleared only on rows nobody changed meanwhile.
"""

from __future__ import annotations

import datetime as dt
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, String, Table, null, select, true, type_coerce
from sqlalchemy.orm import aliased

from core.domain import EncounterFacts, PatientFacts
from core.enums import EncounterType, Sex, TaskStatus
from core.store.models import Department, Encounter, FollowupTask, Patient
from followup_rules.tasks import ExistingTask

TASKS: Table = FollowupTask.__table__  # type: ignore[assignment]
ENCOUNTERS: Table = Encounter.__table__  # type: ignore[assignment]
PATIENTS: Table = Patient.__table__  # type: ignore[assignment]


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
