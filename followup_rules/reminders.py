"""Which care reminders (message-only follow-ups) are due on a day. Pure: no store.

A rule's reminder is due for an encounter the rule matches on each day from the anchor
(discharge, else the visit) plus its offset, for its number of days, in the patient's
zone. Each due reminder carries a key (encounter, rule, template, day) so it is written
once however often the planner looks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from core.domain import EncounterFacts, PatientFacts
from followup_rules.matching import anchor_date, match_rule
from followup_rules.model import RuleSet


@dataclass(frozen=True, slots=True)
class DueReminder:
    encounter_id: int
    rule_id: str
    template: str
    day: dt.date  # the patient-local day it is for

    @property
    def key(self) -> str:
        return f"rem:{self.encounter_id}:{self.rule_id}:{self.template}:{self.day.isoformat()}"


def reach_days(rules: RuleSet) -> int:
    """How many days after its anchor an encounter can still have a reminder due."""
    return max((r.offset_days + r.days for rule in rules.rules for r in rule.reminders),
               default=0)


def due_reminders(rules: RuleSet, patient: PatientFacts,
                  encounters: Sequence[EncounterFacts], today: dt.date) -> Iterator[DueReminder]:
    """The reminders due for `patient` on `today` (their local date)."""
    for encounter in encounters:
        anchor = anchor_date(encounter, patient.timezone)
        if anchor is None:
            continue
        for rule in rules.rules:
            if not rule.reminders or not match_rule(rule, patient, encounter).matched:
                continue
            for spec in rule.reminders:
                first = anchor + dt.timedelta(days=spec.offset_days)
                if first <= today < first + dt.timedelta(days=spec.days):
                    yield DueReminder(encounter.encounter_id, rule.rule_id, spec.template,
                                      today)
