"""Plain facts that cross package boundaries (frozen, no SQL, no protocol dicts)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from core.enums import EncounterType, Sex

# What may go into a dial string or a caller id: digits, an optional leading +. Nothing
# else ever reaches Asterisk (no '&', no channel names, no line breaks).
_DIALABLE = re.compile(r"\+?[0-9]{2,20}")


def is_dialable(number: str) -> bool:
    """True for a number the telephony may dial or show: 2-20 digits, an optional +."""
    return _DIALABLE.fullmatch(number) is not None


@dataclass(frozen=True, slots=True)
class PatientFacts:
    """What the planner and the dialer need to know about a patient."""

    patient_id: int
    his_id: str
    birth_date: dt.date | None
    sex: Sex
    timezone: str
    language: str
    deceased: bool = False
    opted_out: bool = False  # phone channel
    has_phone: bool = True

    def age_on(self, day: dt.date) -> int | None:
        if self.birth_date is None:
            return None
        b = self.birth_date
        return day.year - b.year - ((day.month, day.day) < (b.month, b.day))


@dataclass(frozen=True, slots=True)
class EncounterFacts:
    """One HIS encounter as the planner sees it."""

    encounter_id: int
    his_id: str
    patient_id: int
    type: EncounterType
    department_code: str
    admit_at: dt.datetime | None
    discharge_at: dt.datetime | None
    diagnoses: tuple[str, ...] = ()
    procedures: tuple[str, ...] = ()
    disposition: str | None = None

    @property
    def is_open_inpatient(self) -> bool:
        """An inpatient stay with no discharge yet: the patient is in hospital now."""
        return self.type is EncounterType.INPATIENT and self.discharge_at is None

    @property
    def anchor(self) -> dt.datetime | None:
        """The moment follow-up offsets count from: discharge, else admission/visit."""
        return self.discharge_at or self.admit_at

    def length_of_stay_days(self) -> float | None:
        if self.admit_at is None or self.discharge_at is None:
            return None
        return (self.discharge_at - self.admit_at).total_seconds() / 86400.0


@dataclass(frozen=True, slots=True)
class ScriptVersion:
    """A version of a question script and the dates it may be used on (inclusive)."""

    script_id: str
    version: int
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None
    locales: tuple[str, ...] = field(default=())

    def valid_on(self, day: dt.date) -> bool:
        if self.valid_from is not None and day < self.valid_from:
            return False
        return not (self.valid_until is not None and day > self.valid_until)
