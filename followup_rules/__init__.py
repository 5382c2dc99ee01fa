"""Follow-up rules: rule files, the pure planner (facts in, planned tasks out), explain.

No SQL and no telephony here (an import-linter contract enforces it): `engine.planning`
loads the facts from the store and writes what the planner returns.
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
