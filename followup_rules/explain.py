"""`followup plan --explain`: which rule made each task, and why the others did not match."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from core.domain import EncounterFacts, PatientFacts
from followup_rules.planner import Planner
from followup_rules.tasks import ExistingTask, PlanDiff


@dataclass(frozen=True, slots=True)
class RuleVerdict:
    """One rule checked against one encounter."""

    encounter_id: int
    encounter_his_id: str
    rule_id: str
    rule_source: str
    matched: bool
    reason: str  # empty when matched
    followups: tuple[str, ...]  # "+3d: <what happened>" when matched


@dataclass(frozen=True, slots=True)
class Explanation:
    patient_his_id: str
    suppressed: str  # the cancel reason when the patient may not be called, else ""
    verdicts: tuple[RuleVerdict, ...]
    diff: PlanDiff  # what `followup plan` would change now

    def lines(self) -> list[str]:
        """The explanation as text an administrator can read."""
        out = [f"patient {self.patient_his_id}"]
        if self.suppressed:
            out.append(f"  no calls: patient is {self.suppressed.replace('_', ' ')} "
                       "(pending tasks are cancelled, nothing new is planned)")
        current = None
        for v in self.verdicts:
            if v.encounter_id != current:
                current = v.encounter_id
                out.append(f"  encounter {v.encounter_his_id}")
            if v.matched:
                out.append(f"    rule {v.rule_id}: MATCHED ({v.rule_source})")
                out.extend(f"      {f}" for f in v.followups)
            else:
                out.append(f"    rule {v.rule_id}: no - {v.reason}")
        if not self.verdicts:
            out.append("  no encounters")
        return out


def explain(planner: Planner, patient: PatientFacts, encounters: Sequence[EncounterFacts],
            existing: Sequence[ExistingTask], now: dt.datetime) -> Explanation:
    """Run the planner on one patient and report every rule check and each follow-up's fate."""
    diff, trace = planner.trace(patient, encounters, existing, now)
    verdicts: list[RuleVerdict] = []
    for enc, rule, result in trace.matches:
        followups: list[str] = []
        if result.matched:
            for spec in rule.followups:
                fate = trace.outcomes.get((enc.encounter_id, rule.rule_id, spec.offset_days))
                if fate is None:
                    fate = (f"suppressed: {trace.suppressed.replace('_', ' ')}"
                            if trace.suppressed else "unchanged")
                followups.append(f"+{spec.offset_days}d {spec.script_id}: {fate}")
        verdicts.append(RuleVerdict(enc.encounter_id, enc.his_id, rule.rule_id, rule.source,
                                    result.matched, result.reason, tuple(followups)))
    return Explanation(patient.his_id, trace.suppressed, tuple(verdicts), diff)
