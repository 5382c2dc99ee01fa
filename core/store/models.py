"""The store's tables (SQLAlchemy 2 typed models). Migrations live in `migrations/`.

Hot paths (HIS sync, planning, claiming) use Core statements on these tables; the ORM
classes serve the console and the services where clarity beats speed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.enums import (
    AmdStatus,
    AnswerSource,
    AttemptStatus,
    CancelReason,
    DialOutcome,
    DncReason,
    DncSource,
    EncounterType,
    HoldScope,
    InboundAction,
    MessageBlock,
    MessagePurpose,
    MessageStatus,
    OutboxStatus,
    QuestionKind,
    RecordingKind,
    RejectReason,
    Role,
    ScriptOutcome,
    Severity,
    Sex,
    SyncRunStatus,
    TaskStatus,
    TicketReason,
    TicketStatus,
)
from core.store.types import UTCDateTime, enum_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT identities.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON,
    }


class Department(Base):
    __tablename__ = "departments"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str] = mapped_column(String(128), default="")
    retention_days: Mapped[int | None] = mapped_column(Integer, default=None)


class Patient(Base):
    __tablename__ = "patients"
    __table_args__ = (
        # The console's name-prefix search (LIKE 'x%'): pattern ops so PostgreSQL uses it.
        Index("ix_patients_name", "name", postgresql_ops={"name": "varchar_pattern_ops"}),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    his_id: Mapped[str] = mapped_column(String(64), unique=True)
    mrn: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(128))
    sex: Mapped[Sex] = mapped_column(enum_column(Sex))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    phone: Mapped[str | None] = mapped_column(String(20), index=True)  # E.164
    phone_alt: Mapped[str | None] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(16))
    timezone: Mapped[str] = mapped_column(String(64))
    deceased: Mapped[bool] = mapped_column(Boolean, default=False)
    opt_out_phone: Mapped[bool] = mapped_column(Boolean, default=False)
    opt_out_sms: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_phone: Mapped[bool] = mapped_column(Boolean, default=True)
    consent_sms: Mapped[bool] = mapped_column(Boolean, default=False)
    # the patient agreed that an answering machine may be left the hospital's call-back
    # message (nothing else is ever said to a machine)
    voicemail_ok: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    content_hash: Mapped[str] = mapped_column(String(40))
    plan_dirty: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    updated_at: Mapped[dt.datetime]
    # set when the HIS merged this record into another (HL7 A40): its visits, follow-ups,
    # calls and tickets moved there; this row stays so earlier audit entries still resolve
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"))


class Encounter(Base):
    __tablename__ = "encounters"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    his_id: Mapped[str] = mapped_column(String(64), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    type: Mapped[EncounterType] = mapped_column(enum_column(EncounterType))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    attending_doctor: Mapped[str | None] = mapped_column(String(128))
    admit_at: Mapped[dt.datetime | None]
    discharge_at: Mapped[dt.datetime | None]
    diagnoses: Mapped[list[Any]] = mapped_column(JSON, default=list)  # ICD-10 codes
    procedures: Mapped[list[Any]] = mapped_column(JSON, default=list)
    disposition: Mapped[str | None] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(40))
    plan_dirty: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    updated_at: Mapped[dt.datetime]


class FollowupTask(Base):
    __tablename__ = "followup_tasks"
    __table_args__ = (
        Index("ix_tasks_claim", "status", "next_attempt_at", "priority"),
        # the claim's order: one short index range per priority level (see dialer.claims)
        Index("ix_tasks_claim_order", "status", "priority", "next_attempt_at", "id"),
        Index("ix_tasks_patient_due", "patient_id", "due_date"),
        Index("ix_tasks_due_dept", "due_date", "department_id"),  # console dashboard, reports
        # One claimed task per patient: two dialers can never call one patient at once.
        Index("uq_tasks_claimed_patient", "patient_id", unique=True,
              sqlite_where=text("status = 'claimed'"),
              postgresql_where=text("status = 'claimed'")),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    plan_key: Mapped[str] = mapped_column(String(160), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounters.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    rule_id: Mapped[str] = mapped_column(String(64))
    offset_days: Mapped[int] = mapped_column(Integer)
    script_id: Mapped[str] = mapped_column(String(64))
    script_version: Mapped[int] = mapped_column(Integer)
    # The scripts this call asks, in order: itself first, then the tasks merged into it.
    call_scripts: Mapped[list[Any]] = mapped_column(JSON, default=list)
    due_date: Mapped[dt.date] = mapped_column(Date)
    calling_window: Mapped[str] = mapped_column(String(64))
    timezone: Mapped[str] = mapped_column(String(64))
    window_start: Mapped[dt.datetime]  # UTC start of the first window on the due date
    window_end: Mapped[dt.datetime]  # UTC end of the last window on the due date
    priority: Mapped[int] = mapped_column(Integer, default=50)
    status: Mapped[TaskStatus] = mapped_column(enum_column(TaskStatus), default=TaskStatus.PENDING)
    cancel_reason: Mapped[CancelReason | None] = mapped_column(enum_column(CancelReason))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("followup_tasks.id"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    next_attempt_at: Mapped[dt.datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[dt.datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(32))
    # When a person promised the patient a call back (next_attempt_at holds the same time
    # while the callback is pending); None for the planned calls.
    callback_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    closed_at: Mapped[dt.datetime | None]


class CallAttempt(Base):
    __tablename__ = "call_attempts"
    __table_args__ = (
        # The console's dashboard, call search and reports read one department's time range.
        Index("ix_attempts_dept_created", "department_id", "created_at"),
        # At most one live attempt per patient, enforced by the database itself.
        Index("uq_attempts_live_patient", "patient_id", unique=True,
              sqlite_where=text("status IN ('dialing', 'in_call')"),
              postgresql_where=text("status IN ('dialing', 'in_call')")),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("followup_tasks.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    number: Mapped[int] = mapped_column(Integer)  # 1-based attempt number of the task
    status: Mapped[AttemptStatus] = mapped_column(enum_column(AttemptStatus))
    backend: Mapped[str] = mapped_column(String(16))
    phone: Mapped[str] = mapped_column(String(20))
    dialled: Mapped[bool] = mapped_column(Boolean, default=False)
    dial_outcome: Mapped[DialOutcome | None] = mapped_column(enum_column(DialOutcome))
    script_outcome: Mapped[ScriptOutcome | None] = mapped_column(enum_column(ScriptOutcome))
    hangup_cause: Mapped[int | None] = mapped_column(Integer)
    # answering-machine detection on an answered call, as Asterisk reported it
    amd_status: Mapped[AmdStatus | None] = mapped_column(enum_column(AmdStatus, 16))
    amd_cause: Mapped[str | None] = mapped_column(String(64))  # e.g. LONGGREETING-2000-1500
    # where the call went out: the carrier trunk and the Asterisk server (several of each)
    trunk: Mapped[str | None] = mapped_column(String(64))
    server: Mapped[str | None] = mapped_column(String(32))
    # the call-back message was played to an answering machine
    voicemail_left: Mapped[bool] = mapped_column(Boolean, default=False,
                                                 server_default=false())
    channel: Mapped[str | None] = mapped_column(String(128))
    uniqueid: Mapped[str | None] = mapped_column(String(64), index=True)
    linkedid: Mapped[str | None] = mapped_column(String(64))
    agent: Mapped[str | None] = mapped_column(String(64))
    talk_time_s: Mapped[int | None] = mapped_column(Integer)
    # the call recording while it waits in the spool (see Answer.clip_spool)
    recording_spool: Mapped[str | None] = mapped_column(String(512))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(index=True)
    answered_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]


class Recording(Base):
    __tablename__ = "recordings"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("call_attempts.id"), index=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    kind: Mapped[RecordingKind] = mapped_column(enum_column(RecordingKind))
    path: Mapped[str] = mapped_column(String(512))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    bytes: Mapped[int] = mapped_column(BigInteger)
    duration_ms: Mapped[int] = mapped_column(Integer)
    codec: Mapped[str] = mapped_column(String(32))
    encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime]
    purged_at: Mapped[dt.datetime | None]


class Answer(Base):
    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("attempt_id", "script_id", "question_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("call_attempts.id"), index=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("followup_tasks.id"), index=True)
    script_id: Mapped[str] = mapped_column(String(64))
    script_version: Mapped[int] = mapped_column(Integer)
    question_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[QuestionKind] = mapped_column(enum_column(QuestionKind))
    source: Mapped[AnswerSource] = mapped_column(enum_column(AnswerSource))
    value: Mapped[str | None] = mapped_column(String(256))
    transcript: Mapped[str | None] = mapped_column(Text)
    confidence: Mapped[float | None] = mapped_column(Float)
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(String(256))
    red_flag: Mapped[Severity | None] = mapped_column(enum_column(Severity))
    recording_id: Mapped[int | None] = mapped_column(ForeignKey("recordings.id"))
    # the voice clip while it waits in the spool (the recordings folder failed): filed and
    # cleared by the spool sweep, never dropped
    clip_spool: Mapped[str | None] = mapped_column(String(512))
    offset_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime]


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (Index("ix_tickets_status_dept", "status", "department_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("followup_tasks.id"), index=True)
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("call_attempts.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    reason: Mapped[TicketReason] = mapped_column(enum_column(TicketReason))
    severity: Mapped[Severity | None] = mapped_column(enum_column(Severity))
    priority: Mapped[int] = mapped_column(Integer, default=50)
    status: Mapped[TicketStatus] = mapped_column(enum_column(TicketStatus))
    summary: Mapped[str] = mapped_column(String(512), default="")
    assigned_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    disposition: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime]
    due_at: Mapped[dt.datetime | None]  # when a person must have acted (core.tickets)
    claimed_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[Role] = mapped_column(enum_column(Role))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    extension: Mapped[str | None] = mapped_column(String(20))  # the phone click-to-call rings
    created_at: Mapped[dt.datetime]


class LoginThrottle(Base):
    """Failed logins of one (username, address) pair ("u:name|addr") or one address
    ("a:addr"), and until when further tries from it are refused."""

    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    blocked_until: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime]


class UserGrant(Base):
    """A temporary right granted by a system administrator (e.g. another department)."""

    __tablename__ = "user_grants"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[Role] = mapped_column(enum_column(Role))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    granted_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    expires_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime]


class AuditEntry(Base):
    """Append-only, hash-chained: each row's hash covers its content and the previous hash."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """One row: the last hash of the chain. Locking it serialises appends."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))


class HisSyncRun(Base):
    __tablename__ = "his_sync_runs"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(256))
    status: Mapped[SyncRunStatus] = mapped_column(enum_column(SyncRunStatus))
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]
    watermark_from: Mapped[str | None] = mapped_column(String(64))
    watermark_to: Mapped[str | None] = mapped_column(String(64))
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    inserted: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class HisWatermark(Base):
    """The last committed watermark per source and entity: a dead run resumes from here."""

    __tablename__ = "his_watermarks"
    source: Mapped[str] = mapped_column(String(256), primary_key=True)
    entity: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(64))
    # HIS key of the last committed row at `value`: rows are read in (watermark, key) order,
    # so rows sharing one watermark across a batch boundary are neither skipped nor re-read.
    last_key: Mapped[str | None] = mapped_column(String(128))
    updated_at: Mapped[dt.datetime]


class HisReject(Base):
    """A quarantined HIS row: the raw row, the field and the reason. Never dropped."""

    __tablename__ = "his_rejects"
    __table_args__ = (UniqueConstraint("source", "entity", "row_key", "raw_hash"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("his_sync_runs.id"), index=True)
    source: Mapped[str] = mapped_column(String(256))
    entity: Mapped[str] = mapped_column(String(32))
    row_key: Mapped[str] = mapped_column(String(128))
    raw: Mapped[dict[str, Any]] = mapped_column(JSON)
    raw_hash: Mapped[str] = mapped_column(String(40))
    field: Mapped[str] = mapped_column(String(64))
    reason: Mapped[RejectReason] = mapped_column(enum_column(RejectReason, 32))
    detail: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[dt.datetime]
    resolved_at: Mapped[dt.datetime | None]


class Hl7Message(Base):
    """Every HL7 message a feed took, by control id (MSH-10), with the answer it got: a
    message sent again is acknowledged the same way and not applied twice."""

    __tablename__ = "hl7_messages"
    source: Mapped[str] = mapped_column(String(256), primary_key=True)
    control_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event: Mapped[str] = mapped_column(String(8))
    ack_code: Mapped[str] = mapped_column(String(2))
    received_at: Mapped[dt.datetime]
    detail: Mapped[str | None] = mapped_column(String(512))


class FhirOutbox(Base):
    """A FHIR resource waiting for (or delivered to) the hospital's FHIR server: nothing is
    lost while the server is down; a resource the server refuses keeps its answer."""

    __tablename__ = "fhir_outbox"
    __table_args__ = (UniqueConstraint("resource_type", "resource_id"),
                      Index("ix_fhir_outbox_due", "status", "next_try_at"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("followup_tasks.id"), index=True)
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[OutboxStatus] = mapped_column(enum_column(OutboxStatus, 16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[dt.datetime]
    last_error: Mapped[str | None] = mapped_column(String(1024))
    created_at: Mapped[dt.datetime]
    sent_at: Mapped[dt.datetime | None]


class SpotCheckSample(Base):
    """A supervisor's random sample of answered calls (department, script, day, rate)."""

    __tablename__ = "spot_check_samples"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    script_id: Mapped[str | None] = mapped_column(String(64))  # None: every script
    day: Mapped[dt.date] = mapped_column(Date)
    rate: Mapped[float] = mapped_column(Float)
    seed: Mapped[int] = mapped_column(BigInteger)
    population: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime]


class SpotCheckItem(Base):
    """One sampled call; `reviewed_at` is set when its QA review is saved."""

    __tablename__ = "spot_check_items"
    __table_args__ = (UniqueConstraint("sample_id", "attempt_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("spot_check_samples.id"), index=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("call_attempts.id"))
    position: Mapped[int] = mapped_column(Integer)
    reviewed_at: Mapped[dt.datetime | None]


class QaReview(Base):
    """A supervisor's QA form for one sampled call: scores, flags, comment."""

    __tablename__ = "qa_reviews"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("spot_check_items.id"), unique=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    flags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime]


class ReportSnapshot(Base):
    """A finished month's report figures for one department, kept so trends read no raw rows."""

    __tablename__ = "report_snapshots"
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    computed_at: Mapped[dt.datetime]


class ConsoleSession(Base):
    """A console login. The cookie carries only a random token; its sha256 is kept here, so
    a logout, a deactivation or a lockout ends the session at once."""

    __tablename__ = "console_sessions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    client: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]


class CampaignHold(Base):
    """A pause of calling, for everything, one department or one script, until released.

    While a hold is active (`released_at` is None) no dialer claims the tasks it covers;
    calls in progress finish normally."""

    __tablename__ = "campaign_holds"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    scope: Mapped[HoldScope] = mapped_column(enum_column(HoldScope, 16))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    script_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(256))
    held_by: Mapped[str] = mapped_column(String(64))
    held_at: Mapped[dt.datetime]
    released_by: Mapped[str | None] = mapped_column(String(64))
    released_at: Mapped[dt.datetime | None] = mapped_column(index=True)


class DoNotCall(Base):
    """A number never to be called (E.164), with why, who and until when.

    An entry is in force while `removed_at` is None and `expires_at` has not passed."""

    __tablename__ = "do_not_call"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), index=True)
    reason: Mapped[DncReason] = mapped_column(enum_column(DncReason, 24))
    source: Mapped[DncSource] = mapped_column(enum_column(DncSource, 16))
    note: Mapped[str] = mapped_column(String(256), default="")
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"))
    expires_at: Mapped[dt.datetime | None]
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[dt.datetime]
    removed_by: Mapped[str | None] = mapped_column(String(64))
    removed_at: Mapped[dt.datetime | None]


class LiveFeedEntry(Base):
    """A running dialer's live feed for the wallboard (`core.live_feeds`)."""

    __tablename__ = "live_feeds"
    owner: Mapped[str] = mapped_column(String(64), primary_key=True)  # the dialer's lease name
    url: Mapped[str] = mapped_column(String(256))
    started_at: Mapped[dt.datetime]
    heartbeat_at: Mapped[dt.datetime]


class SmsMessage(Base):
    """One SMS to a patient, from queued to its final state (`core.sms`).

    The body holds no health content: the hospital's name, a neutral sentence and, for a
    questionnaire, the link. A long message goes as several parts (`SmsPart`), each with
    the id the gateway answered its submit with; delivery reports are matched on those."""

    __tablename__ = "sms_messages"
    __table_args__ = (
        Index("ix_sms_messages_due", "status", "next_try_at"),
        Index("ix_sms_messages_patient", "patient_id", "created_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("followup_tasks.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    link_id: Mapped[int | None] = mapped_column(ForeignKey("web_links.id"))
    # a planned reminder's identity (encounter, rule, template, day): written once
    plan_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    purpose: Mapped[MessagePurpose] = mapped_column(enum_column(MessagePurpose, 24))
    template: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(16))
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164, None when there is none
    body: Mapped[str] = mapped_column(Text)
    encoding: Mapped[str] = mapped_column(String(8))  # gsm7 | ucs2
    segments: Mapped[int] = mapped_column(Integer)
    status: Mapped[MessageStatus] = mapped_column(enum_column(MessageStatus, 16))
    block_reason: Mapped[MessageBlock | None] = mapped_column(enum_column(MessageBlock, 24))
    detail: Mapped[str | None] = mapped_column(String(256))  # a block's or failure's words
    gateway: Mapped[str | None] = mapped_column(String(32))
    tries: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime | None]  # not sent after this (a reminder for a day)
    created_at: Mapped[dt.datetime]
    submitted_at: Mapped[dt.datetime | None]
    final_at: Mapped[dt.datetime | None]  # delivered, failed or blocked


class SmsPart(Base):
    """One submitted part (segment) of a message, under the id its gateway gave it. The
    message is delivered when every part is; a part that fails fails the message."""

    __tablename__ = "sms_parts"
    __table_args__ = (Index("ix_sms_parts_gateway_id", "gateway", "gateway_message_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("sms_messages.id"), index=True)
    part: Mapped[int] = mapped_column(Integer)  # 1-based
    gateway: Mapped[str] = mapped_column(String(32))
    gateway_message_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str | None] = mapped_column(String(16))  # the last report's state
    reported_at: Mapped[dt.datetime | None]


class SmsReceipt(Base):
    """A delivery report as the gateway sent it, matched to its message or kept unmatched
    (a malformed or unknown report is logged and kept, never dropped)."""

    __tablename__ = "sms_receipts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    gateway: Mapped[str] = mapped_column(String(32))
    gateway_message_id: Mapped[str | None] = mapped_column(String(64), index=True)
    state: Mapped[str | None] = mapped_column(String(16))  # DELIVRD, UNDELIV, ... as sent
    error: Mapped[str | None] = mapped_column(String(16))
    raw: Mapped[str] = mapped_column(Text)
    part_id: Mapped[int | None] = mapped_column(ForeignKey("sms_parts.id"))  # None: unmatched
    received_at: Mapped[dt.datetime]


class SmsInbound(Base):
    """A message a patient (or anyone) sent to the hospital's number, and what it did."""

    __tablename__ = "sms_inbound"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    gateway: Mapped[str] = mapped_column(String(32))
    phone: Mapped[str] = mapped_column(String(32))  # as received
    body: Mapped[str] = mapped_column(Text)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), index=True)
    action: Mapped[InboundAction] = mapped_column(enum_column(InboundAction, 16))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    received_at: Mapped[dt.datetime]


class WebLink(Base):
    """A one-time link to the patient's web questionnaire for one follow-up task.

    Only the token's SHA-256 is stored. The link works until the questionnaire is finished
    (`used_at`), it expires, or three wrong birth years lock it (`locked_at`, a ticket)."""

    __tablename__ = "web_links"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("followup_tasks.id"), index=True)
    # the web session's attempt row (backend "web"): its answers hang on it like a call's
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("call_attempts.id"))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    verified_at: Mapped[dt.datetime | None]
    used_at: Mapped[dt.datetime | None]
    locked_at: Mapped[dt.datetime | None]
