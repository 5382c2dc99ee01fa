"""Wiring of the follow-up planner: the `Planner` and the planning service from the settings.

The planning service itself (store rows -> the pure planner -> task rows) is
`followup_rules.store.PlanningService`; this module only builds it.
"""

from __future__ import annotations

from pathlib import Path

from core.settings import Settings
from engine.app import App
from followup_rules.loader import check_scripts_exist, load_rule_set
from followup_rules.planner import Planner
from followup_rules.store import PlanningService
from followup_rules.tasks import ScriptCatalog
from ivr.catalog import scan_versions

# TODO(call-path): `engine/demo.py` (being rewritten with the call path) still imports
# `PlanningService` from here; once it imports `followup_rules.store`, drop it from __all__.
__all__ = ["PlanningService", "build_planner", "planning_service"]


def build_planner(settings: Settings) -> Planner:
    """The planner from the settings: rule files, script versions on disk, contact budget.

    Raises FileValidationError for a bad rule or script file, or a rule naming a script
    that does not exist.
    """
    rules = load_rule_set(settings.rules.paths, settings.hospital.calling_hours,
                          settings.rules.late_grace_days)
    scripts = ScriptCatalog(scan_versions(Path(settings.scripts.dir)))
    check_scripts_exist(rules, scripts.script_ids(), settings.scripts.dir)
    return Planner(rules, scripts, settings.rules.calls_per_patient_per_day)


def queue_reminders(app: App) -> int:
    """Queue the care reminders the rules make due today; returns how many were written."""
    from engine.sms_service import policy
    from followup_rules.reminder_store import queue_due_reminders

    rules = load_rule_set(app.settings.rules.paths, app.settings.hospital.calling_hours,
                          app.settings.rules.late_grace_days)
    return queue_due_reminders(app.db, rules, policy(app), app.clock.now())


def planning_service(app: App, workers: int | None = None) -> PlanningService:
    """The planning service on the app's store and clock (`workers` None: CPUs - 1).

    Raises what `build_planner` raises.
    """
    return PlanningService(app.db, build_planner(app.settings), app.clock, workers=workers)
