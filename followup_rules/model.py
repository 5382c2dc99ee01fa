"""The rule set as typed values: what a rule matches and the follow-ups it produces.

Rule files are parsed into these (see `loader.py`); the planner reads nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.calling_window import CallingWindow
from core.enums import EncounterType

DEFAULT_LATE_GRACE_DAYS = 2


@dataclass(frozen=True, slots=True)
class Range:
    """An inclusive numeric range; either end may be open (None)."""

    min: float | None = None
    max: float | None = None

    def contains(self, value: float) -> bool:
        if self.min is not None and value < self.min:
            return False
        return not (self.max is not None and value > self.max)

    def describe(self) -> str:
        if self.min is not None and self.max is not None:
            return f"{_num(self.min)}..{_num(self.max)}"
        if self.min is not None:
            return f">= {_num(self.min)}"
        if self.max is not None:
            return f"<= {_num(self.max)}"
        return "any"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True, slots=True)
class Criteria:
    """What an encounter (and its patient) must be for a rule to apply.

    Empty tuples and None ranges mean "any". Lists match when any element matches.
    """

    encounter_types: tuple[EncounterType, ...] = ()
    departments: tuple[str, ...] = ()
    icd10_prefixes: tuple[str, ...] = ()
    procedures: tuple[str, ...] = ()
    age_years: Range | None = None
    length_of_stay_days: Range | None = None
    dispositions: tuple[str, ...] = ()
    exclude_dispositions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FollowupSpec:
    """One follow-up call a rule asks for, `offset_days` after the encounter's anchor."""

    offset_days: int
    script_id: str
    priority: int
    max_attempts: int
    source: str = ""  # "file:line" of its `script:` key, for errors


@dataclass(frozen=True, slots=True)
class ReminderSpec:
    """A message-only follow-up (关怀性随访): the SMS template sent `offset_days` after the
    encounter's anchor, and again on each of the following `days - 1` days (e.g. a week
    of medication reminders)."""

    offset_days: int
    template: str  # a reminder template of core.sms_templates
    days: int = 1


@dataclass(frozen=True, slots=True)
class Rule:
    """A named rule: criteria, follow-ups and the patient-local calling window."""

    rule_id: str
    description: str
    criteria: Criteria
    followups: tuple[FollowupSpec, ...]
    calling_window: CallingWindow
    source: str  # "file:line", for explain and error messages
    order: int  # position in the rule set (ties in merges are broken by it)
    reminders: tuple[ReminderSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class RuleSet:
    """All rules, in the order they were read (files sorted by name)."""

    rules: tuple[Rule, ...]
    late_grace_days: int = DEFAULT_LATE_GRACE_DAYS

    def by_id(self, rule_id: str) -> Rule | None:
        for rule in self.rules:
            if rule.rule_id == rule_id:
                return rule
        return None
