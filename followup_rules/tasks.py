"""The planner's inputs and outputs besides the domain facts: existing tasks, planned tasks,
and the diff that turns the one into the other. Plain frozen values, no SQL."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from core.domain import ScriptVersion
from core.enums import CancelReason, TaskStatus

FollowupRef = tuple[int, str, int]  # (encounter id, rule id, offset days): one follow-up


def plan_key(encounter_id: int, rule_id: str, offset_days: int, nominal_due: dt.date) -> str:
    """The deterministic identity of a planned task (unique in the store).

    It includes the nominal due date (anchor + offset) so that a corrected discharge date
    plans a new task and cancels the old one, instead of keeping a call on the wrong day.
    """
    return f"{encounter_id}:{rule_id}:{offset_days}:{nominal_due.isoformat()}"


@dataclass(frozen=True, slots=True)
class ExistingTask:
    """A task already in the store, as much of it as the planner needs."""

    plan_key: str
    encounter_id: int
    rule_id: str
    offset_days: int
    script_id: str
    due_date: dt.date
    priority: int
    status: TaskStatus
    merged_into_key: str | None = None
    call_scripts: tuple[str, ...] = ()

    @property
    def ref(self) -> FollowupRef:
        return (self.encounter_id, self.rule_id, self.offset_days)

    @property
    def mutable(self) -> bool:
        """Only tasks nobody is calling yet may be cancelled, merged or released."""
        return self.status in (TaskStatus.PENDING, TaskStatus.MERGED)

    @property
    def uses_call_slot(self) -> bool:
        """A call is being made or was made for it on its due date (contact budget)."""
        return self.status in (TaskStatus.CLAIMED, TaskStatus.DONE, TaskStatus.FAILED,
                               TaskStatus.STOPPED)


@dataclass(frozen=True, slots=True)
class PlannedTask:
    """A task to create. `status` is PENDING, or MERGED into `merged_into_key`'s call."""

    plan_key: str
    patient_id: int
    encounter_id: int
    rule_id: str
    offset_days: int
    script_id: str
    script_version: int
    call_scripts: tuple[str, ...]
    due_date: dt.date
    calling_window: str
    timezone: str
    window_start: dt.datetime
    window_end: dt.datetime
    priority: int
    max_attempts: int
    status: TaskStatus = TaskStatus.PENDING
    merged_into_key: str | None = None


@dataclass(frozen=True, slots=True)
class Cancellation:
    plan_key: str
    reason: CancelReason


@dataclass(frozen=True, slots=True)
class Merge:
    """An existing pending (or merged) task now rides along in `into_key`'s call."""

    plan_key: str
    into_key: str
    call_scripts: tuple[str, ...]  # its own script only, now that another call asks it


@dataclass(frozen=True, slots=True)
class CallScripts:
    """An existing task that is (now) a call of its own, asking these scripts in order.

    `release` is True when it was merged before and becomes pending again.
    """

    plan_key: str
    call_scripts: tuple[str, ...]
    release: bool = False


@dataclass(frozen=True, slots=True)
class PlanDiff:
    """What planning one patient changes in the store."""

    creates: tuple[PlannedTask, ...] = ()
    cancels: tuple[Cancellation, ...] = ()
    merges: tuple[Merge, ...] = ()
    call_scripts: tuple[CallScripts, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (self.creates or self.cancels or self.merges or self.call_scripts)


@dataclass
class PlanCounts:
    """Totals over a planning run, for `followup plan` and the benchmark."""

    patients: int = 0
    encounters: int = 0
    created: int = 0
    merged: int = 0
    released: int = 0
    cancelled: Counter[str] = field(default_factory=Counter)

    def add(self, diff: PlanDiff) -> None:
        self.created += len(diff.creates)
        self.merged += len(diff.merges) + sum(
            1 for t in diff.creates if t.status is TaskStatus.MERGED)
        self.released += sum(1 for c in diff.call_scripts if c.release)
        for c in diff.cancels:
            self.cancelled[c.reason.value] += 1

    def merge_from(self, other: PlanCounts) -> None:
        self.patients += other.patients
        self.encounters += other.encounters
        self.created += other.created
        self.merged += other.merged
        self.released += other.released
        self.cancelled.update(other.cancelled)


class ScriptCatalog:
    """The script versions known to the planner; picks the one valid on a date."""

    def __init__(self, versions: Iterable[ScriptVersion]) -> None:
        by_id: dict[str, list[ScriptVersion]] = {}
        for v in versions:
            by_id.setdefault(v.script_id, []).append(v)
        self._by_id = {k: sorted(vs, key=lambda v: -v.version) for k, vs in by_id.items()}
        self._cache: dict[tuple[str, dt.date], ScriptVersion | None] = {}

    def __contains__(self, script_id: str) -> bool:
        return script_id in self._by_id

    def valid_on(self, script_id: str, day: dt.date) -> ScriptVersion | None:
        """The newest version of `script_id` valid on `day`, or None."""
        key = (script_id, day)
        if key not in self._cache:
            found = None
            for v in self._by_id.get(script_id, ()):
                if v.valid_on(day):
                    found = v
                    break
            self._cache[key] = found
        return self._cache[key]

    def script_ids(self) -> set[str]:
        return set(self._by_id)

    def versions(self) -> list[ScriptVersion]:
        return [v for vs in self._by_id.values() for v in vs]
