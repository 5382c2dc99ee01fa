"""Every state and outcome the engine knows, as string enums (stored by value)."""

from __future__ import annotations

from enum import IntEnum, StrEnum


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
    DO_NOT_CALL = "do_not_call"  # the number is on the do-not-call list
    WRONG_NUMBER = "wrong_number"  # a person found the number is not the patient's


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
    FAILED = "failed"  # the backend could not take the call now (not dialled, retried soon)
    ERROR = "error"  # the engine or the backend failed on this call (a bug, a refusal)
    # answered by an answering machine or voicemail (Asterisk's AMD): nothing was said to
    # it; an attempt, retried at another time of day
    MACHINE = "machine"

    @property
    def was_dialled(self) -> bool:
        """Did the network really try the number?"""
        return self not in (DialOutcome.FAILED, DialOutcome.ERROR)

    @property
    def counts_without_dialling(self) -> bool:
        """An error counts as an attempt although nothing rang: a call that fails the same
        way every time must run out of attempts (and reach a person), never loop."""
        return self is DialOutcome.ERROR


class HangupCause(IntEnum):
    """Q.850 causes as Asterisk reports them in `Hangup` `Cause:`."""

    NOT_DEFINED = 0  # Asterisk's "Unknown": an answered call ended inside AGI
    UNALLOCATED = 1
    NO_ROUTE_TRANSIT_NET = 2
    NO_ROUTE_DESTINATION = 3
    CHANNEL_UNACCEPTABLE = 6
    NORMAL_CLEARING = 16
    USER_BUSY = 17
    NO_USER_RESPONSE = 18
    NO_ANSWER = 19
    SUBSCRIBER_ABSENT = 20
    CALL_REJECTED = 21
    NUMBER_CHANGED = 22
    ANSWERED_ELSEWHERE = 26
    DESTINATION_OUT_OF_ORDER = 27
    INVALID_NUMBER_FORMAT = 28
    FACILITY_REJECTED = 29
    NORMAL_UNSPECIFIED = 31
    NORMAL_CIRCUIT_CONGESTION = 34
    NETWORK_OUT_OF_ORDER = 38
    NORMAL_TEMPORARY_FAILURE = 41
    SWITCH_CONGESTION = 42
    REQUESTED_CHAN_UNAVAIL = 44
    BEARERCAPABILITY_NOTAVAIL = 58
    INTERWORKING = 127

    @classmethod
    def parse(cls, raw: str | None) -> HangupCause | None:
        """The cause named by a header value, or None when absent or not one we know."""
        if raw is None or not raw.isascii() or not raw.strip().lstrip("-").isdigit():
            return None
        try:
            return cls(int(raw))
        except ValueError:
            return None


class AmdStatus(StrEnum):
    """Asterisk's answering-machine detection verdict (`AMDSTATUS`), as Asterisk gave it."""

    HUMAN = "HUMAN"
    MACHINE = "MACHINE"
    NOTSURE = "NOTSURE"
    HANGUP = "HANGUP"


class ScriptOutcome(StrEnum):
    """How the question script ended on an answered call."""

    COMPLETED = "completed"
    PARTIAL = "partial"  # hung up mid-script; the next call resumes
    REFUSED = "refused"
    IDENTITY_FAILED = "identity_failed"
    OPTED_OUT = "opted_out"
    TRANSFERRED = "transferred"  # a queue connected the call to a person (red flag, 0 key)
    ESCALATED = "escalated"  # red flag outside staffed hours: ticket + safety message
    # the IVR handed the call to a queue but nobody took it (rang out, left, abandoned):
    # the red flag's or the person request's ticket is raised instead
    HANDOFF_UNANSWERED = "handoff_unanswered"


class QuestionKind(StrEnum):
    YES_NO = "yes_no"
    CHOICE = "choice"
    SCALE = "scale"
    NUMBER = "number"
    VOICE = "voice"
    MESSAGE = "message"


class YesNo(StrEnum):
    """How a yes/no answer is stored (`answers.value`), whatever channel took it."""

    YES = "yes"
    NO = "no"


class AnswerSource(StrEnum):
    KEYPAD = "keypad"
    VOICE = "voice"
    WEB = "web"  # the patient's own questionnaire, through a link sent by SMS
    NONE = "none"  # unanswered after the re-prompts


class TicketReason(StrEnum):
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    RED_FLAG = "red_flag"
    LOW_CONFIDENCE = "low_confidence"
    IDENTITY_FAILED = "identity_failed"
    ASKED_FOR_PERSON = "asked_for_person"
    INVALID_NUMBER = "invalid_number"
    CALLING_PAUSED = "calling_paused"  # a run of failed calls paused the dialer
    SMS_REPLY = "sms_reply"  # the patient answered a message with something to read


class TicketStatus(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    CLOSED = "closed"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """How severe: LOW 0 < MEDIUM 1 < HIGH 2 < CRITICAL 3 (higher is more severe)."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


class CallProgress(StrEnum):
    """A call's progress as the telephony backend sees it, in the order it can happen
    (a call may skip steps: a busy line never rings; most calls never queue)."""

    PLACED = "placed"  # the campaign took a channel for the call: the originate goes out
    DIALLED = "dialled"  # the network really dialled the number: the attempt counts
    RINGING = "ringing"
    ANSWERED = "answered"
    IN_QUEUE = "in_queue"  # handed to the nurse or agent queue
    CONNECTED = "connected"  # a person in that queue took the call
    ENDED = "ended"


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
    TOO_LONG = "too_long"  # longer than the store keeps
    IMPLAUSIBLE_DATE = "implausible_date"  # a birth in the future, a visit years ahead
    MRN_IN_USE = "mrn_in_use"  # the record number belongs to another patient
    STORE_REFUSED = "store_refused"  # the database refused the row (its first line says why)


class OutboxStatus(StrEnum):
    """Where a resource for the hospital's FHIR server stands."""

    PENDING = "pending"  # not delivered yet (new, or the server was down or failing)
    SENT = "sent"  # the server took it (2xx)
    REFUSED = "refused"  # the server said no (4xx): a person must look; kept with its answer


class HoldScope(StrEnum):
    """What a campaign hold (pause) covers."""

    ALL = "all"
    DEPARTMENT = "department"
    SCRIPT = "script"


class DncReason(StrEnum):
    """Why a number is on the do-not-call list."""

    PATIENT_REQUEST = "patient_request"  # the patient asked not to be called
    WRONG_NUMBER = "wrong_number"  # the number is not the patient's (until the HIS fixes it)
    OTHER = "other"


class DncSource(StrEnum):
    """Where a do-not-call entry came from."""

    CONSOLE = "console"
    CLI = "cli"
    IMPORT = "import"  # a CSV list
    TICKET = "ticket"  # an agent's disposition on a ticket


class MessagePurpose(StrEnum):
    """Why a message is sent to a patient (its template says what it says)."""

    QUESTIONNAIRE_LINK = "questionnaire_link"  # the calls failed, or SMS is preferred
    REMINDER = "reminder"  # a care reminder the rules plan (revisit, medication)
    RED_FLAG_NOTICE = "red_flag_notice"  # "a nurse will call you within N hours"


class MessageStatus(StrEnum):
    """Where an SMS stands. BLOCKED, DELIVERED and FAILED are final."""

    QUEUED = "queued"  # waiting for its window, the caps or a retry
    BLOCKED = "blocked"  # never sent, with the reason (opt-out, no phone, a cap ...)
    SUBMITTED = "submitted"  # the gateway took it; its delivery report is awaited
    DELIVERED = "delivered"  # the handset has it
    FAILED = "failed"  # refused for good, or undeliverable (the reason is kept)


class MessageBlock(StrEnum):
    """Why a message was never sent."""

    OPTED_OUT = "opted_out"  # opted out of SMS, or no SMS consent
    DECEASED = "deceased"
    NO_PHONE = "no_phone"  # no mobile number the gateway can reach
    DO_NOT_CALL = "do_not_call"  # the number is listed as not the patient's
    MISSING_VARIABLE = "missing_variable"  # the template needs a value this patient lacks
    EXPIRED = "expired"  # its window passed before it could go (e.g. a reminder's day)


class InboundAction(StrEnum):
    """What an SMS a patient sent us did."""

    OPTED_OUT = "opted_out"  # TD / 退订 / STOP
    TICKET = "ticket"  # anything else: a person reads it
    UNKNOWN_SENDER = "unknown_sender"  # no patient has that number: kept, nothing done
