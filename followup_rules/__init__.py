"""Follow-up rules: rule files, the pure planner (facts in, planned tasks out), explain,
and the planner's persistence beside it.

    model.py, loader.py   the rule files' schema and their loader (YAML, with line numbers)
    matching.py           does a rule apply to an encounter, and from which anchor date
    tasks.py              existing and planned tasks, the plan diff and its counts, scripts
    planner.py            `Planner`: facts in, plan diff out (suppression, contact budget)
    explain.py            `followup plan --explain`
    --- the store side (SQL; the only modules here that may import core.store or sqlalchemy)
    work_loader.py        dirty patients and their facts and tasks, read from the store
    task_writer.py        plan diffs flattened into rows, written in bulk
    store.py              `PlanningService`: read, plan (in worker processes when large), write
    task_listing.py       `followup tasks`: the planned calls, filtered

The pure modules take no SQL and no telephony (an import-linter contract lists them); this
package namespace exports only them, so importing it does not pull in the store.
"""

from __future__ import annotations

from followup_rules.explain import Explanation, explain
from followup_rules.loader import load_rule_set, parse_rules_text
from followup_rules.model import Rule, RuleSet
from followup_rules.planner import Planner
from followup_rules.tasks import ExistingTask, PlanCounts, PlanDiff, PlannedTask, ScriptCatalog

__all__ = [
    "ExistingTask",
    "Explanation",
    "PlanCounts",
    "PlanDiff",
    "PlannedTask",
    "Planner",
    "Rule",
    "RuleSet",
    "ScriptCatalog",
    "explain",
    "load_rule_set",
    "parse_rules_text",
]
