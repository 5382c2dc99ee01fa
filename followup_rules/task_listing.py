"""`followup tasks`: the planned calls as a readable list, filtered (one store query, each
task with its latest call attempt, and whether a campaign hold keeps it waiting), and a
call's outcome in plain words."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, and_, func, or_, select, true
from sqlalchemy.orm import aliased

from core.campaign_holds import holds_in_force
from core.enums import AttemptStatus, DialOutcome, ScriptOutcome, TaskStatus
from core.store.db import Database
from core.store.models import CallAttempt, Department, FollowupTask, Patient

TASKS: Table = FollowupTask.__table__  # type: ignore[assignment]
PATIENTS: Table = Patient.__table__  # type: ignore[assignment]
DEPARTMENTS: Table = Department.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class TaskFilter:
    status: TaskStatus | None = None
    department: str | None = None
    due_from: dt.date | None = None
    due_to: dt.date | None = None
    patient: str | None = None  # HIS id or MRN
    limit: int = 50


DIAL_WORDS = {
    DialOutcome.ANSWERED: "answered", DialOutcome.BUSY: "busy",
    DialOutcome.NO_ANSWER: "no answer", DialOutcome.UNREACHABLE: "unreachable",
    DialOutcome.CONGESTION: "network busy", DialOutcome.INVALID_NUMBER: "invalid number",
    DialOutcome.FAILED: "not placed", DialOutcome.ERROR: "system error",
    DialOutcome.MACHINE: "answering machine"}
SCRIPT_WORDS = {
    ScriptOutcome.COMPLETED: "completed", ScriptOutcome.PARTIAL: "partly answered",
    ScriptOutcome.REFUSED: "refused", ScriptOutcome.IDENTITY_FAILED: "identity not confirmed",
    ScriptOutcome.OPTED_OUT: "opted out", ScriptOutcome.TRANSFERRED: "transferred to a person",
    ScriptOutcome.ESCALATED: "escalated (red flag)",
    ScriptOutcome.HANDOFF_UNANSWERED: "handed over, nobody took it"}
STATUS_WORDS = {
    AttemptStatus.DIALING: "dialling", AttemptStatus.IN_CALL: "in call",
    AttemptStatus.ENDED: "ended", AttemptStatus.UNKNOWN: "outcome unknown"}


def outcome_words(status: AttemptStatus, dial: DialOutcome | None,
                  script: ScriptOutcome | None) -> str:
    """How a call attempt ended, in plain words: the script's outcome on an answered call,
    else the dial's, else where the attempt stands."""
    if script is not None:
        return SCRIPT_WORDS[script]
    if dial is not None:
        return DIAL_WORDS[dial]
    return STATUS_WORDS[status]


@dataclass(frozen=True, slots=True)
class LastAttempt:
    """A task's latest call attempt."""

    number: int
    status: AttemptStatus
    dial_outcome: DialOutcome | None
    script_outcome: ScriptOutcome | None
    created_at: dt.datetime  # when it was placed (UTC)

    @property
    def words(self) -> str:
        return outcome_words(self.status, self.dial_outcome, self.script_outcome)


@dataclass(frozen=True, slots=True)
class TaskLine:
    task_id: int
    patient_his_id: str
    department: str
    rule_id: str
    due_date: dt.date
    window: str
    scripts: tuple[str, ...]
    status: str
    note: str
    last_attempt: LastAttempt | None = None
    paused: bool = False  # pending, and a campaign hold covers it (`followup campaign`)


def list_tasks(db: Database, flt: TaskFilter) -> tuple[list[TaskLine], int]:
    """Tasks matching `flt`, soonest first, each with its latest attempt (in the same query:
    the attempt with the task's highest id, found by the attempts' task index), and how
    many match in all."""
    t, p, d = TASKS.c, PATIENTS.c, DEPARTMENTS.c
    conds: list[Any] = []
    if flt.status is not None:
        conds.append(t.status == flt.status)
    if flt.department:
        conds.append(d.code == flt.department.upper())
    if flt.due_from:
        conds.append(t.due_date >= flt.due_from)
    if flt.due_to:
        conds.append(t.due_date <= flt.due_to)
    if flt.patient:
        conds.append(or_(p.his_id == flt.patient, p.mrn == flt.patient))
    base = (select(t.id).select_from(TASKS.join(PATIENTS, p.id == t.patient_id)
                                      .join(DEPARTMENTS, d.id == t.department_id))
            .where(and_(true(), *conds)))
    host = aliased(FollowupTask)
    last = aliased(CallAttempt)
    latest = (select(func.max(CallAttempt.id)).where(CallAttempt.task_id == t.id)
              .correlate(TASKS).scalar_subquery())
    with db.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(base.subquery())).scalar_one()
        holds = holds_in_force(conn)
        rows = conn.execute(
            select(t.id, p.his_id, d.code, t.rule_id, t.due_date, t.calling_window,
                   t.call_scripts, t.script_version, t.status, t.cancel_reason, host.id,
                   t.attempts, t.max_attempts, last.number, last.status, last.dial_outcome,
                   last.script_outcome, last.created_at, t.department_id)
            .select_from(TASKS.join(PATIENTS, p.id == t.patient_id)
                         .join(DEPARTMENTS, d.id == t.department_id)
                         .outerjoin(host, host.id == t.merged_into_id)
                         .outerjoin(last, last.id == latest))
            .where(and_(true(), *conds))
            .order_by(t.due_date, t.priority, t.id).limit(flt.limit)).all()
    lines = []
    for r in rows:
        status = TaskStatus(r[8])
        if status is TaskStatus.CANCELLED:
            note = f"reason: {r[9]}"
        elif status is TaskStatus.MERGED:
            note = f"asked in call #{r[10]}"
        else:
            note = f"attempts {r[11]}/{r[12]}"
        attempt = None if r[13] is None else LastAttempt(r[13], r[14], r[15], r[16], r[17])
        scripts = tuple(r[6] or ())
        paused = status is TaskStatus.PENDING and holds.covers(r[18], scripts)
        lines.append(TaskLine(r[0], r[1], r[2], r[3], r[4], r[5], scripts, status.value, note,
                              attempt, paused))
    return lines, total
