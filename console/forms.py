"""Form input parsed at the boundary into frozen dataclasses.

Every parser raises `FormError` (naming the field) before anything is stored, so bad input
never leaves a half-done change: oversized text, markup, wrong types, unknown choices.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from core.enums import Role
from core.errors import FollowupError

MAX_NOTES = 2000
MAX_LINE = 128
# Any HTML/XML tag or script-ish construct: the console stores plain text only.
_MARKUP = re.compile(r"<\s*/?\s*[a-zA-Z!?]|javascript:|on[a-z]+\s*=", re.IGNORECASE)
_USERNAME = re.compile(r"[a-z][a-z0-9_.-]{2,31}")
_PHONE_EXT = re.compile(r"[0-9*#+]{1,20}")
E = TypeVar("E", bound=StrEnum)


class FormError(FollowupError):
    """A form field is invalid; `field` names it and `problem` says why (message key).
    `values` fill the message's blanks (e.g. the calling window a time must lie in); the
    plain message shows them too."""

    code = "invalid_input"

    def __init__(self, field: str, problem: str, **values: str) -> None:
        shown = "".join(f" {key}={value}" for key, value in values.items())
        super().__init__(f"{field}: {problem}{shown}")
        self.field = field
        self.problem = problem
        self.values = values


class Disposition(StrEnum):
    """How an agent closed a ticket. Four act on the patient (`console.worklist`):
    DECEASED and REFUSED stop every pending call, WRONG_NUMBER lists the number and asks
    for the HIS to be corrected, CALL_BACK puts the ticket's call back at a promised time.

    REFUSED also covers "do not call me again": both mean the patient opts out of calls and
    the number goes on the do-not-call list, so a separate disposition would do the same
    thing under another name and split one figure in two in the reports.
    """

    REACHED_WELL = "reached_well"
    REACHED_REFERRED = "reached_referred"
    REACHED_COMPLETED_SURVEY = "reached_completed_survey"
    NOT_REACHED = "not_reached"
    CALL_BACK = "call_back"  # the patient asked to be called at another time
    WRONG_NUMBER = "wrong_number"
    REFUSED = "refused"
    DECEASED = "deceased"
    OTHER = "other"


class QaFlag(StrEnum):
    PRIVACY = "privacy"  # said health details before identity was checked
    WRONG_ANSWER = "wrong_answer"  # the stored answer differs from what was said
    TRANSCRIPT_WRONG = "transcript_wrong"
    AUDIO_POOR = "audio_poor"
    NEEDS_CALLBACK = "needs_callback"


QA_SCORES = ("identity", "script", "clarity", "transcript")


Form = Mapping[str, str]


def text(form: Form, field: str, *, max_len: int, required: bool = False,
         multiline: bool = False) -> str:
    value = form.get(field, "")
    if not isinstance(value, str):
        raise FormError(field, "wrong_type")
    value = value.strip()
    if required and not value:
        raise FormError(field, "required")
    if len(value) > max_len:
        raise FormError(field, "too_long")
    if _MARKUP.search(value):
        raise FormError(field, "markup")
    if not multiline and ("\n" in value or "\r" in value):
        raise FormError(field, "one_line")
    if any(ord(c) < 32 and c not in "\r\n\t" for c in value):
        raise FormError(field, "control_chars")
    return value


def _stripped(form: Form, field: str) -> str:
    """The field as stripped text; an upload or other non-text value is refused."""
    raw = form.get(field, "")
    if not isinstance(raw, str):
        raise FormError(field, "wrong_type")
    return raw.strip()


def integer(form: Form, field: str, *, low: int, high: int, default: int | None = None) -> int:
    raw = _stripped(form, field)
    if not raw and default is not None:
        return default
    if not re.fullmatch(r"-?[0-9]{1,12}", raw):
        raise FormError(field, "not_a_number")
    value = int(raw)
    if not low <= value <= high:
        raise FormError(field, "out_of_range")
    return value


def optional_int(form: Form, field: str) -> int | None:
    raw = form.get(field, "")
    if not isinstance(raw, str) or not raw.strip():
        return None
    return integer(form, field, low=1, high=2**53)


def date(form: Form, field: str, *, default: dt.date | None = None) -> dt.date:
    raw = _stripped(form, field)
    if not raw and default is not None:
        return default
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        raise FormError(field, "not_a_date")
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise FormError(field, "not_a_date") from None


def month(form: Form, field: str, *, default: dt.date) -> dt.date:
    """YYYY-MM -> the first day of that month."""
    raw = form.get(field, "")
    if not isinstance(raw, str) or not raw.strip():
        return default.replace(day=1)
    m = re.fullmatch(r"(\d{4})-(\d{2})", raw.strip())
    if m is None or not 1 <= int(m.group(2)) <= 12 or not 2000 <= int(m.group(1)) <= 2100:
        raise FormError(field, "not_a_month")
    return dt.date(int(m.group(1)), int(m.group(2)), 1)


def choice(form: Form, field: str, enum: type[E], *, required: bool = True) -> E | None:
    raw = form.get(field, "")
    if not isinstance(raw, str):
        raise FormError(field, "wrong_type")
    if not raw and not required:
        return None
    try:
        return enum(raw)
    except ValueError:
        raise FormError(field, "unknown_choice") from None


def local_minute(form: Form, field: str) -> dt.datetime | None:
    """A wall-clock time to the minute, "YYYY-MM-DDTHH:MM" (a `datetime-local` input) or
    "YYYY-MM-DD HH:MM", as a naive datetime (the hospital's local time); None when empty."""
    raw = _stripped(form, field)
    if not raw:
        return None
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", raw):
        raise FormError(field, "not_a_time")
    try:
        return dt.datetime.fromisoformat(raw.replace(" ", "T"))
    except ValueError:
        raise FormError(field, "not_a_time") from None


@dataclass(frozen=True, slots=True)
class DispositionForm:
    disposition: Disposition
    notes: str
    # CALL_BACK only: when, in the hospital's local time (naive; the service knows the zone)
    callback_at: dt.datetime | None = None

    @classmethod
    def parse(cls, form: Form) -> DispositionForm:
        disposition = choice(form, "disposition", Disposition)
        assert disposition is not None
        notes = text(form, "notes", max_len=MAX_NOTES, multiline=True)
        if disposition is not Disposition.CALL_BACK:
            return cls(disposition, notes)
        callback_at = local_minute(form, "callback_at")
        if callback_at is None:
            raise FormError("callback_at", "required")
        return cls(disposition, notes, callback_at)


@dataclass(frozen=True, slots=True)
class ReassignForm:
    """Whom a supervisor hands a ticket to."""

    user_id: int

    @classmethod
    def parse(cls, form: Form) -> ReassignForm:
        return cls(integer(form, "user_id", low=1, high=2**53))


@dataclass(frozen=True, slots=True)
class NotesForm:
    notes: str

    @classmethod
    def parse(cls, form: Form) -> NotesForm:
        return cls(text(form, "notes", max_len=MAX_NOTES, required=True, multiline=True))


@dataclass(frozen=True, slots=True)
class ClickToCallForm:
    extension: str

    @classmethod
    def parse(cls, form: Form) -> ClickToCallForm:
        ext = text(form, "extension", max_len=20, required=True)
        if not _PHONE_EXT.fullmatch(ext):
            raise FormError("extension", "not_an_extension")
        return cls(ext)


@dataclass(frozen=True, slots=True)
class SampleForm:
    department_id: int
    script_id: str | None
    day: dt.date
    rate_percent: int

    @classmethod
    def parse(cls, form: Form, today: dt.date) -> SampleForm:
        dept = integer(form, "department_id", low=1, high=2**53)
        script = text(form, "script_id", max_len=64) or None
        if script is not None and not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", script):
            raise FormError("script_id", "unknown_choice")
        day = date(form, "day", default=today)
        if day > today:
            raise FormError("day", "in_future")
        return cls(dept, script, day, integer(form, "rate_percent", low=1, high=100))


@dataclass(frozen=True, slots=True)
class QaForm:
    scores: dict[str, int]
    flags: tuple[QaFlag, ...]
    comment: str

    @classmethod
    def parse(cls, form: Form, flag_values: list[str]) -> QaForm:
        scores = {name: integer(form, f"score_{name}", low=1, high=5) for name in QA_SCORES}
        flags: list[QaFlag] = []
        for raw in flag_values:
            try:
                flags.append(QaFlag(raw))
            except ValueError:
                raise FormError("flags", "unknown_choice") from None
        comment = text(form, "comment", max_len=MAX_NOTES, multiline=True)
        return cls(scores, tuple(sorted(set(flags))), comment)


@dataclass(frozen=True, slots=True)
class UserForm:
    username: str
    display_name: str
    password: str
    role: Role
    department_id: int | None

    @classmethod
    def parse(cls, form: Form) -> UserForm:
        username = text(form, "username", max_len=32, required=True)
        if not _USERNAME.fullmatch(username):
            raise FormError("username", "bad_username")
        display = text(form, "display_name", max_len=MAX_LINE, required=True)
        password = form.get("password", "")
        if not isinstance(password, str):
            raise FormError("password", "wrong_type")
        check_password(password)
        role = choice(form, "role", Role)
        assert role is not None
        return cls(username, display, password, role, optional_int(form, "department_id"))


def check_password(password: str) -> None:
    if len(password) < 10:
        raise FormError("password", "too_short")
    if len(password) > 256:
        raise FormError("password", "too_long")


@dataclass(frozen=True, slots=True)
class GrantForm:
    user_id: int
    role: Role
    department_id: int | None
    days: int

    @classmethod
    def parse(cls, form: Form) -> GrantForm:
        role = choice(form, "role", Role)
        assert role is not None
        if role in (Role.ADMIN, Role.SYSADMIN):  # console.access.NOT_GRANTABLE
            raise FormError("role", "not_grantable")
        return cls(integer(form, "user_id", low=1, high=2**53), role,
                   optional_int(form, "department_id"),
                   integer(form, "days", low=1, high=30))


@dataclass(frozen=True, slots=True)
class CallSearch:
    """Filters of the task and call search (query string)."""

    q: str
    department_id: int | None
    script_id: str
    outcome: str
    date_from: dt.date | None
    date_to: dt.date | None
    page: int
    # a report's drill-down: calls that answered this question ("script/question"), and
    # with this stored value when `answer` is given
    question: str = ""
    answer: str = ""

    @classmethod
    def parse(cls, form: Form) -> CallSearch:
        q = text(form, "q", max_len=64)
        script = text(form, "script_id", max_len=64)
        outcome = text(form, "outcome", max_len=24)
        date_from = date(form, "date_from") if form.get("date_from") else None
        date_to = date(form, "date_to") if form.get("date_to") else None
        question = text(form, "question", max_len=129)
        if question and question.count("/") != 1:
            raise FormError("question", "bad_format")
        return cls(q, optional_int(form, "department_id"), script, outcome, date_from, date_to,
                   integer(form, "page", low=1, high=10_000, default=1), question,
                   text(form, "answer", max_len=256))
