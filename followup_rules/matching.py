"""Does a rule apply to an encounter? Criteria are checked in a fixed order and the first
failing one is reported in words an administrator can read."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from core.calling_window import zone
from core.domain import EncounterFacts, PatientFacts
from core.enums import EncounterType
from followup_rules.loader import normalise_icd10
from followup_rules.model import Criteria, Rule


@dataclass(frozen=True, slots=True)
class MatchResult:
    """`matched`, or the first criterion that failed and why."""

    matched: bool
    criterion: str = ""
    reason: str = ""


MATCHED = MatchResult(True)


def _fail(criterion: str, reason: str) -> MatchResult:
    return MatchResult(False, criterion, reason)


def _list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(values) + "]"


def anchor_date(encounter: EncounterFacts, timezone: str) -> dt.date | None:
    """The patient-local date follow-up offsets count from (discharge, else admission)."""
    anchor = encounter.anchor
    if anchor is None:
        return None
    tz: ZoneInfo = zone(timezone)
    return anchor.astimezone(tz).date()


def match_rule(rule: Rule, patient: PatientFacts, encounter: EncounterFacts) -> MatchResult:
    """Check `rule` against one encounter of `patient`: MATCHED or the first failure."""
    c: Criteria = rule.criteria
    if c.encounter_types and encounter.type not in c.encounter_types:
        return _fail("encounter_types", f"encounter type {encounter.type.value} not in "
                     f"{_list(tuple(t.value for t in c.encounter_types))}")
    if encounter.type is EncounterType.INPATIENT and encounter.discharge_at is None:
        return _fail("discharged", "still in hospital (no discharge yet)")
    if c.departments and encounter.department_code.upper() not in c.departments:
        return _fail("departments",
                     f"department {encounter.department_code} not in {_list(c.departments)}")
    if c.icd10_prefixes:
        codes = [normalise_icd10(d) for d in encounter.diagnoses]
        if not any(code.startswith(p) for code in codes for p in c.icd10_prefixes):
            shown = ", ".join(encounter.diagnoses) or "none"
            return _fail("icd10_prefixes", f"no diagnosis ({shown}) starts with "
                         f"{_list(c.icd10_prefixes)}")
    if c.procedures:
        procs = {p.upper() for p in encounter.procedures}
        if not procs.intersection(c.procedures):
            shown = ", ".join(encounter.procedures) or "none"
            return _fail("procedures", f"no procedure ({shown}) in {_list(c.procedures)}")
    if c.age_years is not None:
        day = anchor_date(encounter, patient.timezone)
        age = patient.age_on(day) if day is not None else None
        if age is None:
            return _fail("age", "age unknown (no birth date or no visit date)")
        if not c.age_years.contains(age):
            return _fail("age", f"age {age} not in {c.age_years.describe()}")
    if c.length_of_stay_days is not None:
        los = encounter.length_of_stay_days()
        if los is None:
            return _fail("length_of_stay_days", "length of stay unknown (no admission or "
                         "discharge time)")
        if not c.length_of_stay_days.contains(los):
            return _fail("length_of_stay_days", f"length of stay {los:.1f} days not in "
                         f"{c.length_of_stay_days.describe()}")
    disposition = (encounter.disposition or "").lower()
    if c.dispositions and disposition not in c.dispositions:
        return _fail("dispositions", f"disposition {encounter.disposition or 'none'} not in "
                     f"{_list(c.dispositions)}")
    if disposition and disposition in c.exclude_dispositions:
        return _fail("exclude_dispositions", f"disposition {encounter.disposition} is excluded "
                     f"{_list(c.exclude_dispositions)}")
    if encounter.anchor is None:
        return _fail("anchor", "no discharge or visit time to count days from")
    return MATCHED
