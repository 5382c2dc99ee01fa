"""Task and call search, the call detail and the patient page — all inside the principal's
departments. An id outside them is `NotFound`, the same as an id that does not exist."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select
from sqlalchemy.orm import Session

from console.access import Principal
from console.forms import CallSearch
from console.periods import day_range
from core.enums import AnswerSource, DialOutcome, RecordingKind, ScriptOutcome, TaskStatus
from core.errors import NotFound
from core.phones import to_e164
from core.store.models import (
    Answer,
    AuditEntry,
    CallAttempt,
    Department,
    Encounter,
    FollowupTask,
    Patient,
    Recording,
    SmsMessage,
    Ticket,
)

PAGE_SIZE = 50
EXPORT_LIMIT = 10_000  # rows in one CSV export (narrow the search for more)
MAX_MATCHED_PATIENTS = 500  # a name prefix matching more is too vague to list


@dataclass(frozen=True, slots=True)
class CallRow:
    attempt_id: int
    created_at: dt.datetime
    department: str
    patient_id: int
    patient_name: str
    mrn: str
    script_id: str
    number: int
    dial_outcome: str
    script_outcome: str
    department_name: str = ""
    department_name_en: str = ""


@dataclass(frozen=True, slots=True)
class SearchResult:
    rows: tuple[CallRow, ...]
    page: int
    has_more: bool


def search_calls(session: Session, who: Principal, f: CallSearch, tz: str,
                 page_size: int = PAGE_SIZE) -> SearchResult:
    """Newest first, one page of `page_size`; uses the (department, created_at) and
    created_at indexes."""
    stmt = (select(CallAttempt.id, CallAttempt.created_at, Department.code, Patient.id,
                   Patient.name, Patient.mrn, FollowupTask.script_id, CallAttempt.number,
                   CallAttempt.dial_outcome, CallAttempt.script_outcome, Department.name,
                   Department.name_en)
            .join(Patient, Patient.id == CallAttempt.patient_id)
            .join(FollowupTask, FollowupTask.id == CallAttempt.task_id)
            .join(Department, Department.id == CallAttempt.department_id)
            .where(who.scope(CallAttempt.department_id)))
    if f.department_id is not None:
        stmt = stmt.where(CallAttempt.department_id == f.department_id)
    if f.date_from is not None:
        stmt = stmt.where(CallAttempt.created_at >= day_range(f.date_from, tz)[0])
    if f.date_to is not None:
        stmt = stmt.where(CallAttempt.created_at < day_range(f.date_to, tz)[1])
    if f.script_id:
        stmt = stmt.where(FollowupTask.script_id == f.script_id)
    if f.outcome:
        if f.outcome in {o.value for o in ScriptOutcome}:
            stmt = stmt.where(CallAttempt.script_outcome == ScriptOutcome(f.outcome))
        elif f.outcome in {o.value for o in DialOutcome}:
            stmt = stmt.where(CallAttempt.dial_outcome == DialOutcome(f.outcome))
        else:
            return SearchResult((), f.page, False)
    if f.question:
        script_id, question_id = f.question.split("/")
        answered = select(Answer.id).where(
            Answer.attempt_id == CallAttempt.id, Answer.script_id == script_id,
            Answer.question_id == question_id, Answer.source != AnswerSource.NONE)
        if f.answer:
            answered = answered.where(Answer.value == f.answer)
        stmt = stmt.where(exists(answered))
    if f.q:
        # Patients first (each condition has its index), then their attempts by the patient
        # index, then the page cut from them (`_cut_page`): an OR across the join would
        # defeat every index
        q = f.q
        by_patient = CallAttempt.patient_id.in_(matching_patients(session, q))
        stmt = _cut_page(session, stmt.where(
            or_(CallAttempt.id == int(q), by_patient) if q.isdigit() and len(q) < 16
            else by_patient), CallAttempt.id, CallAttempt.created_at,
            (f.page - 1) * page_size, page_size)
        offset = 0
    else:
        offset = (f.page - 1) * page_size
    rows = session.execute(stmt.order_by(CallAttempt.created_at.desc(), CallAttempt.id.desc())
                           .offset(offset).limit(page_size + 1)).all()
    out = tuple(CallRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7],
                        r[8].value if r[8] else "", r[9].value if r[9] else "", r[10],
                        r[11] or "")
                for r in rows[:page_size])
    return SearchResult(out, f.page, len(rows) > page_size)


def _cut_page(session: Session, stmt: Select[*tuple[Any, ...]], id_col: Any,
              order_col: Any, offset: int, size: int) -> Select[*tuple[Any, ...]]:
    """`stmt` narrowed to one page (and one row more) of its rows, newest `order_col`
    first, cut here from the few rows a patient search matches: given "... ORDER BY
    created_at LIMIT n", PostgreSQL walks that index backwards past hundreds of thousands
    of rows instead of reading the patients' rows by their index (757 ms at 10 M
    attempts)."""
    found = list(session.execute(stmt.with_only_columns(id_col, order_col)))
    found.sort(key=lambda r: (r[1], r[0]), reverse=True)
    return stmt.where(id_col.in_([r[0] for r in found[offset:offset + size + 1]]))


def _prefix(q: str) -> str:
    return q.replace("\\", "").replace("%", "").replace("_", "") + "%"


@dataclass(frozen=True, slots=True)
class TaskRow:
    task_id: int
    due_date: dt.date
    department: str
    patient_id: int
    patient_name: str
    mrn: str
    script_id: str
    status: str
    attempts: int
    max_attempts: int
    department_name: str = ""
    department_name_en: str = ""


@dataclass(frozen=True, slots=True)
class TaskResult:
    rows: tuple[TaskRow, ...]
    page: int
    has_more: bool


def search_tasks(session: Session, who: Principal, f: CallSearch,
                 page_size: int = PAGE_SIZE) -> TaskResult:
    """Follow-up tasks by due date (newest first), with or without calls yet."""
    stmt = (select(FollowupTask.id, FollowupTask.due_date, Department.code, Patient.id,
                   Patient.name, Patient.mrn, FollowupTask.script_id, FollowupTask.status,
                   FollowupTask.attempts, FollowupTask.max_attempts, Department.name,
                   Department.name_en)
            .join(Patient, Patient.id == FollowupTask.patient_id)
            .join(Department, Department.id == FollowupTask.department_id)
            .where(who.scope(FollowupTask.department_id)))
    if f.department_id is not None:
        stmt = stmt.where(FollowupTask.department_id == f.department_id)
    if f.date_from is not None:
        stmt = stmt.where(FollowupTask.due_date >= f.date_from)
    if f.date_to is not None:
        stmt = stmt.where(FollowupTask.due_date <= f.date_to)
    if f.script_id:
        stmt = stmt.where(FollowupTask.script_id == f.script_id)
    if f.outcome:
        if f.outcome not in {s.value for s in TaskStatus}:
            return TaskResult((), f.page, False)
        stmt = stmt.where(FollowupTask.status == TaskStatus(f.outcome))
    offset = (f.page - 1) * page_size
    if f.q:  # the patients' tasks by the patient index, the page cut here (`search_calls`)
        stmt = _cut_page(session, stmt.where(
            FollowupTask.patient_id.in_(matching_patients(session, f.q))),
            FollowupTask.id, FollowupTask.due_date, offset, page_size)
        offset = 0
    rows = session.execute(stmt.order_by(FollowupTask.due_date.desc(), FollowupTask.id.desc())
                           .offset(offset).limit(page_size + 1)).all()
    out = tuple(TaskRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7].value, r[8], r[9],
                        r[10], r[11] or "")
                for r in rows[:page_size])
    return TaskResult(out, f.page, len(rows) > page_size)


MIN_MRN_PREFIX = 3  # a shorter MRN start matches too many patients to be meant


def _mrn_starts(q: str) -> list[ColumnElement[bool]]:
    """MRNs starting with `q` as typed, upper or lower case: a range on the MRN index
    (`q <= mrn < q with its last character raised`), which every store can use."""
    if len(q) < MIN_MRN_PREFIX or not q.isascii() or not q.isalnum():
        return []
    return [and_(Patient.mrn >= v, Patient.mrn < v[:-1] + chr(ord(v[-1]) + 1))
            for v in {q, q.upper(), q.lower()}]


def matching_patients(session: Session, q: str) -> list[int]:
    """Patients by MRN (whole or its start, in any case), phone (in any format the HIS
    sync accepts: "138 0013 8000", "0086-138…", normalised by the sync's own rule) or name
    prefix, each on its own index."""
    q = q.strip()
    match: list[ColumnElement[bool]] = [Patient.mrn.in_({q, q.upper(), q.lower()}),
                                        Patient.name.like(_prefix(q)), *_mrn_starts(q)]
    phone = to_e164(q) if any(ch.isdigit() for ch in q) else None
    if phone is not None:
        match.append(Patient.phone == phone)
    elif q.lstrip("+").isdigit():
        match.append(Patient.phone == q)
    return list(session.execute(select(Patient.id).where(or_(*match))
                                .limit(MAX_MATCHED_PATIENTS)).scalars())


@dataclass(frozen=True, slots=True)
class AnswerView:
    script_id: str
    question_id: str
    kind: str
    source: str
    value: str
    transcript: str
    confidence: float | None
    needs_review: bool
    red_flag: str
    offset_s: float | None  # where it sits in the call recording (the player jumps there)
    clip_id: int | None = None  # a voice answer's own clip, played inline


@dataclass(frozen=True, slots=True)
class CallDetail:
    attempt: CallAttempt
    task: FollowupTask
    patient: Patient
    department: Department
    answers: tuple[AnswerView, ...]
    recording: Recording | None
    recording_flagged: str  # the integrity problem found on an earlier read, if any
    tickets: tuple[Ticket, ...]


def call_detail(session: Session, who: Principal, attempt_id: int) -> CallDetail:
    """Raises NotFound if the attempt does not exist or is outside the caller's scope."""
    attempt = session.execute(select(CallAttempt).where(
        CallAttempt.id == attempt_id, who.scope(CallAttempt.department_id))).scalar_one_or_none()
    if attempt is None:
        raise NotFound(f"call {attempt_id} not found")
    task = session.get(FollowupTask, attempt.task_id)
    patient = session.get(Patient, attempt.patient_id)
    dept = session.get(Department, attempt.department_id)
    if task is None or patient is None or dept is None:
        raise NotFound(f"call {attempt_id} not found")
    answers = session.execute(select(Answer).where(Answer.attempt_id == attempt_id)
                              .order_by(Answer.offset_ms.is_(None), Answer.offset_ms,
                                        Answer.id)).scalars().all()
    recording = session.execute(
        select(Recording).where(Recording.attempt_id == attempt_id,
                                Recording.kind == RecordingKind.CALL,
                                Recording.purged_at.is_(None))
        .order_by(Recording.id.desc()).limit(1)).scalar_one_or_none()
    flagged = ""
    if recording is not None:
        entry = session.execute(
            select(AuditEntry).where(AuditEntry.object_type == "recording",
                                     AuditEntry.object_id == str(recording.id),
                                     AuditEntry.action == "recording.integrity_failed")
            .order_by(AuditEntry.id.desc()).limit(1)).scalar_one_or_none()
        if entry is not None:
            flagged = str(entry.detail.get("problem", "integrity check failed"))
    tickets = session.execute(select(Ticket).where(Ticket.attempt_id == attempt_id)
                              .order_by(Ticket.id)).scalars().all()
    views = tuple(
        AnswerView(a.script_id, a.question_id, a.kind.value, a.source.value, a.value or "",
                   a.transcript or "", a.confidence, a.needs_review,
                   a.red_flag.value if a.red_flag else "",
                   a.offset_ms / 1000 if a.offset_ms is not None and recording is not None
                   else None,
                   a.recording_id if a.recording_id is not None and (
                       recording is None or a.recording_id != recording.id) else None)
        for a in answers)
    return CallDetail(attempt, task, patient, dept, views, recording, flagged, tuple(tickets))


def recording_in_scope(session: Session, who: Principal, recording_id: int) -> Recording:
    """The recording row if the caller may hear it; NotFound otherwise."""
    rec = session.execute(select(Recording).where(
        Recording.id == recording_id, Recording.purged_at.is_(None),
        who.scope(Recording.department_id))).scalar_one_or_none()
    if rec is None:
        raise NotFound(f"recording {recording_id} not found")
    return rec


@dataclass(frozen=True, slots=True)
class PatientPage:
    patient: Patient
    encounters: tuple[tuple[Encounter, str], ...]
    tasks: tuple[tuple[FollowupTask, tuple[CallAttempt, ...]], ...]
    messages: tuple[SmsMessage, ...] = ()  # the SMS sent to the patient, newest first


def patient_page(session: Session, who: Principal, patient_id: int) -> PatientPage:
    """The patient with the encounters and follow-ups of the caller's departments only.

    A patient with nothing in the caller's departments is NotFound.
    """
    patient = session.get(Patient, patient_id)
    visible = patient is not None and session.execute(select(
        or_(exists().where(and_(Encounter.patient_id == patient_id,
                                who.scope(Encounter.department_id))),
            exists().where(and_(FollowupTask.patient_id == patient_id,
                                who.scope(FollowupTask.department_id)))))).scalar()
    if patient is None or not visible:
        raise NotFound(f"patient {patient_id} not found")
    encs = session.execute(
        select(Encounter, Department.code).join(Department,
                                                Department.id == Encounter.department_id)
        .where(Encounter.patient_id == patient_id, who.scope(Encounter.department_id))
        .order_by(Encounter.discharge_at.desc())).all()
    tasks = session.execute(
        select(FollowupTask).where(FollowupTask.patient_id == patient_id,
                                   who.scope(FollowupTask.department_id))
        .order_by(FollowupTask.due_date.desc())).scalars().all()
    attempts: dict[int, list[CallAttempt]] = {}
    if tasks:
        for a in session.execute(select(CallAttempt).where(
                CallAttempt.task_id.in_([t.id for t in tasks]))
                .order_by(CallAttempt.number)).scalars():
            attempts.setdefault(a.task_id, []).append(a)
    messages = session.execute(
        select(SmsMessage).where(SmsMessage.patient_id == patient_id,
                                 who.scope(SmsMessage.department_id))
        .order_by(SmsMessage.created_at.desc(), SmsMessage.id.desc())).scalars().all()
    return PatientPage(patient, tuple((e, code) for e, code in encs),
                       tuple((t, tuple(attempts.get(t.id, []))) for t in tasks),
                       tuple(messages))
