"""Rule criteria: each one matches, and the first failing one is explained in words."""

from __future__ import annotations

import datetime as dt

import pytest

from core.enums import EncounterType
from followup_rules.loader import parse_rules_text
from followup_rules.matching import match_rule
from followup_rules.model import Rule
from tests.unit.rules.factories import encounter, local, patient

RULE = """\
rules:
  - id: r
    match:
      encounter_types: [inpatient]
      departments: [CARD]
      icd10_prefixes: [I21, I50]
      procedures: [0210093]
      age: {min: 18, max: 80}
      length_of_stay_days: {min: 2, max: 30}
      dispositions: [home, community]
    followups: [{offset: +3d, script: s}]
"""


def rule(text: str = RULE) -> Rule:
    return parse_rules_text(text, "r.yaml", "09:00-20:00").rules[0]


def good(**kw: object) -> object:
    base = {"diagnoses": ("I21.4", "E11"), "procedures": ("0210093",)}
    base.update(kw)
    return encounter(1, EncounterType.INPATIENT, "CARD", local(2026, 3, 9),
                     admit=local(2026, 3, 4), **base)


def test_all_criteria_pass() -> None:
    result = match_rule(rule(), patient(), good())  # type: ignore[arg-type]
    assert result.matched and result.reason == ""


@pytest.mark.parametrize(("change", "criterion", "reason"), [
    ({"type": EncounterType.OUTPATIENT}, "encounter_types",
     "encounter type outpatient not in [inpatient]"),
    ({"department_code": "ORTH"}, "departments", "department ORTH not in [CARD]"),
    ({"diagnoses": ("J18.9",)}, "icd10_prefixes", "no diagnosis (J18.9) starts with [I21, I50]"),
    ({"procedures": ()}, "procedures", "no procedure (none) in [0210093]"),
    ({"admit_at": local(2026, 3, 8, 20)}, "length_of_stay_days",
     "length of stay 0.6 days not in 2..30"),
    ({"disposition": "transferred"}, "dispositions",
     "disposition transferred not in [home, community]"),
    ({"discharge_at": None}, "discharged", "still in hospital (no discharge yet)"),
])
def test_first_failing_criterion_is_named(change: dict[str, object], criterion: str,
                                          reason: str) -> None:
    result = match_rule(rule(), patient(), good(**change))  # type: ignore[arg-type]
    assert not result.matched
    assert (result.criterion, result.reason) == (criterion, reason)


def test_age_is_taken_on_the_local_discharge_date() -> None:
    # Born 1946-03-10: 80 on 2026-03-10 (still in 18..80), 79 the day before.
    p = patient(birth_date=dt.date(1946, 3, 10))
    assert match_rule(rule(), p, good()).matched  # type: ignore[arg-type]
    p81 = patient(birth_date=dt.date(1945, 3, 9))
    result = match_rule(rule(), p81, good())  # type: ignore[arg-type]
    assert (result.criterion, result.reason) == ("age", "age 81 not in 18..80")
    unknown = match_rule(rule(), patient(birth_date=None), good())  # type: ignore[arg-type]
    assert unknown.criterion == "age" and "unknown" in unknown.reason


def test_icd10_prefix_ignores_case_and_dots() -> None:
    r = rule(RULE.replace("[I21, I50]", "[i50.1]"))
    assert match_rule(r, patient(), good(diagnoses=("I501",))).matched  # type: ignore[arg-type]
    assert match_rule(r, patient(), good(diagnoses=("i50.13",))).matched  # type: ignore[arg-type]
    assert not match_rule(r, patient(), good(diagnoses=("I50.2",))).matched  # type: ignore[arg-type]


def test_excluded_disposition() -> None:
    text = """\
rules:
  - id: r
    match: {exclude_dispositions: [died]}
    followups: [{offset: +1d, script: s}]
"""
    r = rule(text)
    e = encounter(1, EncounterType.OUTPATIENT, "DERM", local(2026, 3, 9))
    assert match_rule(r, patient(), e).matched
    from dataclasses import replace
    died = match_rule(r, patient(), replace(e, disposition="DIED"))
    assert died.criterion == "exclude_dispositions"
