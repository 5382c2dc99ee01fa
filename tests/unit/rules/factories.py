"""Hand-written facts for the rules tests, and an in-memory task store (a fake, not a mock)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo

from core.domain import EncounterFacts, PatientFacts, ScriptVersion
from core.enums import EncounterType, Sex, TaskStatus
from followup_rules.loader import load_rule_set
from followup_rules.model import RuleSet
from followup_rules.planner import Planner
from followup_rules.tasks import ExistingTask, PlanDiff, ScriptCatalog

REPO = Path(__file__).resolve().parents[3]
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 3, 10, 1, 0, tzinfo=dt.UTC)  # 09:00 in Shanghai, 2026-03-10

SCRIPTS = [
    ScriptVersion("inpatient-satisfaction", 1),
    ScriptVersion("outpatient-satisfaction", 1),
    ScriptVersion("cardiology-post-discharge", 1, valid_until=dt.date(2026, 3, 31)),
    ScriptVersion("cardiology-post-discharge", 2, valid_from=dt.date(2026, 4, 1)),
    ScriptVersion("surgery-post-discharge", 1),
    ScriptVersion("oncology-post-discharge", 1),
    ScriptVersion("post-operative", 1, valid_until=dt.date(2026, 6, 30)),
    ScriptVersion("post-operative", 2, valid_from=dt.date(2026, 7, 1)),
]


def default_rules() -> RuleSet:
    return load_rule_set([REPO / "followup_rules" / "rules"], "09:00-20:00")


def planner(calls_per_day: int = 1, scripts: list[ScriptVersion] | None = None) -> Planner:
    return Planner(default_rules(), ScriptCatalog(SCRIPTS if scripts is None else scripts),
                   calls_per_day)


def local(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> dt.datetime:
    """A Shanghai wall-clock time as aware UTC."""
    return dt.datetime(y, m, d, hh, mm, tzinfo=SHANGHAI).astimezone(dt.UTC)


def patient(pid: int = 1, **kw: object) -> PatientFacts:
    base = PatientFacts(patient_id=pid, his_id=f"P{pid}", birth_date=dt.date(1956, 5, 1),
                        sex=Sex.FEMALE, timezone="Asia/Shanghai", language="zh-CN")
    return replace(base, **kw)  # type: ignore[arg-type]


def encounter(eid: int, etype: EncounterType, dept: str, discharge: dt.datetime | None,
              admit: dt.datetime | None = None, pid: int = 1, **kw: object) -> EncounterFacts:
    if admit is None:
        base = discharge or NOW
        admit = base - (dt.timedelta(days=5) if etype is EncounterType.INPATIENT
                        else dt.timedelta(hours=1))
    e = EncounterFacts(encounter_id=eid, his_id=f"E{eid}", patient_id=pid, type=etype,
                       department_code=dept, admit_at=admit, discharge_at=discharge,
                       disposition="home")
    return replace(e, **kw)  # type: ignore[arg-type]


class FakeTaskStore:
    """Applies plan diffs the way the planning service does, in memory."""

    def __init__(self) -> None:
        self.tasks: dict[str, ExistingTask] = {}
        self.extra: dict[str, dict[str, object]] = {}  # version, window, cancel reason...

    def existing(self) -> list[ExistingTask]:
        return list(self.tasks.values())

    def apply(self, diff: PlanDiff) -> None:
        for c in diff.creates:
            assert c.plan_key not in self.tasks
            self.tasks[c.plan_key] = ExistingTask(
                plan_key=c.plan_key, encounter_id=c.encounter_id, rule_id=c.rule_id,
                offset_days=c.offset_days, script_id=c.script_id, due_date=c.due_date,
                priority=c.priority, status=c.status, merged_into_key=c.merged_into_key,
                call_scripts=c.call_scripts)
            self.extra[c.plan_key] = {"version": c.script_version, "window": c.calling_window,
                                      "window_start": c.window_start, "reason": None}
        for m in diff.merges:
            t = self.tasks[m.plan_key]
            assert t.mutable
            self.tasks[m.plan_key] = replace(t, status=TaskStatus.MERGED,
                                             merged_into_key=m.into_key,
                                             call_scripts=m.call_scripts)
        for s in diff.call_scripts:
            t = self.tasks[s.plan_key]
            assert t.mutable
            self.tasks[s.plan_key] = replace(t, status=TaskStatus.PENDING, merged_into_key=None,
                                             call_scripts=s.call_scripts)
        for c in diff.cancels:
            t = self.tasks[c.plan_key]
            assert t.mutable
            self.tasks[c.plan_key] = replace(t, status=TaskStatus.CANCELLED,
                                             merged_into_key=None)
            self.extra[c.plan_key]["reason"] = c.reason

    def set_status(self, plan_key: str, status: TaskStatus) -> None:
        self.tasks[plan_key] = replace(self.tasks[plan_key], status=status)

    def summary(self) -> set[tuple[str, str, str, str]]:
        """(rule id, due date, status, scripts or reason) of every task."""
        out = set()
        for key, t in self.tasks.items():
            reason = self.extra[key]["reason"]
            what = "+".join(t.call_scripts) if reason is None else str(reason)
            if t.status is TaskStatus.MERGED:
                what = f"into {self.tasks[t.merged_into_key or ''].rule_id}"
            out.add((t.rule_id, t.due_date.isoformat(), t.status.value, what))
        return out
