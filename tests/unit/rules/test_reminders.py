"""Care reminders in the rules: how they are written, checked, and when they fall due."""

from __future__ import annotations

import datetime as dt

import pytest

from core.enums import EncounterType
from core.errors import FileValidationError
from followup_rules.loader import parse_rules_text
from followup_rules.reminders import due_reminders, reach_days
from tests.unit.rules.factories import default_rules, encounter, patient

RULES = """\
rules:
  - id: heart-meds
    match:
      encounter_types: [inpatient]
      departments: [CARD]
    reminders:
      - {offset: +1d, message: medication_reminder, days: 3}
      - {offset: +14d, message: revisit_reminder}
"""


def test_a_rule_of_reminders_only_needs_no_calls() -> None:
    rule = parse_rules_text(RULES, "r.yaml", "09:00-20:00").rules[0]
    assert rule.followups == ()
    assert [(r.offset_days, r.template, r.days) for r in rule.reminders] == [
        (1, "medication_reminder", 3), (14, "revisit_reminder", 1)]


@pytest.mark.parametrize(("old", "new", "field", "problem"), [
    ("message: revisit_reminder", "message: questionnaire_link", "rules.0.reminders.1.message",
     "not a reminder message"),
    ("days: 3", "days: 0", "rules.0.reminders.0.days", "1 to 90"),
    ("+14d, message: revisit_reminder", "+1d, message: medication_reminder",
     "rules.0.reminders.1.offset", "appears twice"),
    ("    reminders:\n", "    reminder:\n", "rules.0.reminder", "unknown key"),
])
def test_a_bad_reminder_names_its_field(old: str, new: str, field: str, problem: str) -> None:
    assert old in RULES
    with pytest.raises(FileValidationError) as info:
        parse_rules_text(RULES.replace(old, new, 1), "r.yaml", "09:00-20:00")
    assert info.value.field == field and problem in info.value.problem


def test_a_rule_needs_calls_or_reminders() -> None:
    text = RULES.split("    reminders:")[0]
    with pytest.raises(FileValidationError, match="followups or reminders"):
        parse_rules_text(text, "r.yaml", "09:00-20:00")


def test_medication_reminders_fall_daily_and_the_revisit_once_in_the_patients_days() -> None:
    rules = default_rules()
    assert reach_days(rules) == 15
    p = patient()
    # discharged 2026-03-01 22:30 in Shanghai (14:30 UTC)
    visit = encounter(7, EncounterType.INPATIENT, "CARD",
                      dt.datetime(2026, 3, 1, 14, 30, tzinfo=dt.UTC))

    def due(day: dt.date) -> list[str]:
        return [r.template for r in due_reminders(rules, p, [visit], day)]

    assert due(dt.date(2026, 3, 1)) == []
    assert due(dt.date(2026, 3, 2)) == ["medication_reminder"]
    assert due(dt.date(2026, 3, 8)) == ["medication_reminder"]
    assert due(dt.date(2026, 3, 9)) == []
    assert due(dt.date(2026, 3, 15)) == ["revisit_reminder"]
    keys = {r.key for r in due_reminders(rules, p, [visit], dt.date(2026, 3, 2))}
    assert keys == {f"rem:{visit.encounter_id}:cardiology-post-discharge:medication_reminder:"
                    "2026-03-02"}
    orthopaedics = encounter(8, EncounterType.INPATIENT, "ORTH",
                             dt.datetime(2026, 3, 1, 14, 30, tzinfo=dt.UTC))
    assert list(due_reminders(rules, p, [orthopaedics], dt.date(2026, 3, 2))) == []
