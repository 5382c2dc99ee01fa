"""Every state and outcome the engine knows, as string enums (stored by value)."""

from __future__ import annotations

from enum import StrEnum


class Sex(StrEnum):
    MALE = "male"
    FEMALE = "female"
    UNKNOWN = "unknown"


class EncounterType(StrEnum):
    INPATIENT = "inpatient"
    OUTPATIENT = "outpatient"
    EXAM = "exam"
    SURGERY = "surgery"


class TaskStatus(StrEnum):
    PENDING = "pending"  # waiting for its window or its next attempt
    CLAIMED = "claimed"  # leased by one dialer process
    DONE = "done"  # the script ran to an end we accept (completed, transferred, ...)
    FAILED = "failed"  # attempts exhausted; a callback ticket was raised
    STOPPED = "stopped"  # refused, opted out, invalid number: never call again
    CANCELLED = "cancelled"  # suppressed before any call; `cancel_reason` says why
    MERGED = "merged"  # folded into another task's call (contact budget)


class CancelReason(StrEnum):
    DECEASED = "deceased"
    OPTED_OUT = "opted_out"
    READMITTED = "readmitted"
    SUPERSEDED = "superseded"  # a newer encounter took over the plan
    NO_LONGER_PLANNED = "no_longer_planned"  # the encounter or the rules changed
    NO_PHONE = "no_phone"


class AttemptStatus(StrEnum):
    DIALING = "dialing"  # written before the originate is sent
    IN_CALL = "in_call"
    ENDED = "ended"
    UNKNOWN = "unknown"  # found dialing after a crash with no live channel


class DialOutcome(StrEnum):
    """How the dial itself ended (before any IVR)."""

    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    UNREACHABLE = "unreachable"
    CONGESTION = "congestion"
    INVALID_NUMBER = "invalid_number"
    FAILED = "failed"

    @property
    def was_dialled(self) -> bool:
        """Did the network really try the number? Only then does an attempt count."""
        return self is not DialOutcome.FAILED


class ScriptOutcome(StrEnum):
    """How the question script ended on an answered call."""

    COMPLETED = "completed"
    PARTIAL = "partial"  # hung up mid-script; the next call resumes
    REFUSED = "refused"
    IDENTITY_FAILED = "identity_failed"
    OPTED_OUT = "opted_out"
    TRANSFERRED = "transferred"  # handed to a person (red flag or the 0 key)
    ESCALATED = "escalated"  # red flag outside staffed hours: ticket + safety message


class QuestionKind(StrEnum):
    YES_NO = "yes_no"
    CHOICE = "choice"
    SCALE = "scale"
    NUMBER = "number"
    VOICE = "voice"
    MESSAGE = "message"


class AnswerSource(StrEnum):
    KEYPAD = "keypad"
    VOICE = "voice"
    NONE = "none"  # unanswered after the re-prompts


class TicketReason(StrEnum):
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    RED_FLAG = "red_flag"
    LOW_CONFIDENCE = "low_confidence"
    IDENTITY_FAILED = "identity_failed"
    ASKED_FOR_PERSON = "asked_for_person"
    INVALID_NUMBER = "invalid_number"


class TicketStatus(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    CLOSED = "closed"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Role(StrEnum):
    SYSADMIN = "sysadmin"
    ADMIN = "admin"
    DEPT_MANAGER = "dept_manager"
    SUPERVISOR = "supervisor"
    AGENT = "agent"


class RecordingKind(StrEnum):
    CALL = "call"  # the whole call (MixMonitor or the sim channel)
    ANSWER_CLIP = "answer_clip"  # one voice answer (RECORD FILE)


class SyncRunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class RejectReason(StrEnum):
    """Why an HIS row went to quarantine."""

    MISSING_FIELD = "missing_field"
    UNPARSEABLE_DATE = "unparseable_date"
    INVALID_PHONE = "invalid_phone"
    UNKNOWN_DEPARTMENT = "unknown_department"
    UNKNOWN_CODE = "unknown_code"
    CONFLICTING_DUPLICATE = "conflicting_duplicate"
    UNKNOWN_PATIENT = "unknown_patient"
    INVALID_VALUE = "invalid_value"
