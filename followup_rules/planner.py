"""The pure planner: one patient's facts and `now` in, a plan diff out.

Planning is per patient so that suppression, superseding and the contact budget are
correct across all of a patient's encounters. The steps, in order:

1. Suppression. A deceased patient, one who opted out of calls, one with no phone number,
   or one who is in hospital right now (an open inpatient stay: readmitted) gets no new
   tasks, and every pending task of theirs is cancelled with that reason.
2. Matching. Every rule is checked against every encounter (`matching.match_rule`).
3. Superseding. When several encounters match the same rule, only the newest (latest
   discharge/visit) keeps that rule's follow-ups; the older ones' pending tasks are
   cancelled as `superseded` and their missing tasks are not created.
4. What is no longer wanted (the encounter or the rules changed) is cancelled as
   `no_longer_planned`.
5. New tasks. A follow-up whose due date is more than `late_grace_days` in the past when it
   is first planned (an old discharge synced late) is skipped; one due within the grace
   period is planned for today. The script version is the newest one valid on the due
   date; with none valid the task is not created.
6. Contact budget. At most `calls_per_day` calls per patient per local day. Calls already
   made or in progress that day count; a new task on a full day moves to the next day with
   room. The day's pending tasks are sorted by (priority, rule order, encounter, offset):
   the first N are calls, the rest merge into the first call, which asks its own script
   and then theirs (each script once).

Tasks that are claimed, done, failed or stopped are never changed; only pending (and
merged) ones are cancelled, merged or released. Planning is idempotent: run twice with the
same facts and `now`, the second diff is empty.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

from core.calling_window import zone
from core.domain import EncounterFacts, PatientFacts
from core.enums import CancelReason, TaskStatus
from followup_rules.matching import MatchResult, anchor_date, match_rule
from followup_rules.model import FollowupSpec, Rule, RuleSet
from followup_rules.tasks import (
    CallScripts,
    Cancellation,
    ExistingTask,
    Merge,
    PlanDiff,
    PlannedTask,
    ScriptCatalog,
    plan_key,
)

MAX_DEFER_DAYS = 60


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A follow-up the rules want for the newest matching encounter."""

    key: str
    encounter: EncounterFacts
    rule: Rule
    spec: FollowupSpec
    nominal_due: dt.date


@dataclass(slots=True)
class _PoolEntry:
    """A task competing for a call on one day (an existing mutable task or a new one)."""

    sort_key: tuple[int, int, int, int]
    key: str
    script_id: str
    existing: ExistingTask | None
    new: PlannedTask | None


@dataclass(slots=True)
class Trace:
    """What `Planner.explain` collects: each rule check and each follow-up's fate."""

    matches: list[tuple[EncounterFacts, Rule, MatchResult]]
    outcomes: dict[str, str]
    suppressed: str = ""


class Planner:
    """Turns facts into a `PlanDiff`. Holds only immutable inputs; safe to share."""

    def __init__(self, rules: RuleSet, scripts: ScriptCatalog, calls_per_day: int = 1) -> None:
        if calls_per_day < 1:
            raise ValueError("calls_per_day must be at least 1")
        self.rules = rules
        self.scripts = scripts
        self.calls_per_day = calls_per_day
        self._rule_order = {r.rule_id: r.order for r in rules.rules}

    def plan(self, patient: PatientFacts, encounters: Sequence[EncounterFacts],
             existing: Sequence[ExistingTask], now: dt.datetime) -> PlanDiff:
        """The changes that bring this patient's tasks in line with the rules at `now`."""
        return self._run(patient, encounters, existing, now, None)

    def trace(self, patient: PatientFacts, encounters: Sequence[EncounterFacts],
              existing: Sequence[ExistingTask], now: dt.datetime) -> tuple[PlanDiff, Trace]:
        """Plan and record why (see `explain.py` for the readable form)."""
        trace = Trace(matches=[], outcomes={})
        return self._run(patient, encounters, existing, now, trace), trace

    # -- the steps -------------------------------------------------------------------------

    def _run(self, patient: PatientFacts, encounters: Sequence[EncounterFacts],
             existing: Sequence[ExistingTask], now: dt.datetime, trace: Trace | None) -> PlanDiff:
        today = now.astimezone(zone(patient.timezone)).date()
        suppress = suppression_reason(patient, encounters)
        if suppress is not None:
            if trace is not None:
                trace.suppressed = suppress.value
                self._match_all(patient, encounters, trace)
            return PlanDiff(cancels=tuple(Cancellation(t.plan_key, suppress)
                                          for t in existing if t.mutable))
        live, superseded = self._desired(patient, encounters, trace)
        existing_by_key = {t.plan_key: t for t in existing}
        cancels: list[Cancellation] = []
        survivors: list[ExistingTask] = []
        for t in existing:
            if not t.mutable:
                continue
            if t.plan_key in superseded:
                cancels.append(Cancellation(t.plan_key, CancelReason.SUPERSEDED))
            elif t.plan_key not in live:
                cancels.append(Cancellation(t.plan_key, CancelReason.NO_LONGER_PLANNED))
            else:
                survivors.append(t)
        if trace is not None:
            for t in existing:
                if t.plan_key in live or t.plan_key in superseded:
                    trace.outcomes.setdefault(t.plan_key, f"task exists ({t.status.value}, "
                                              f"due {t.due_date})")
            for c in cancels:
                trace.outcomes[c.plan_key] = f"pending task cancelled: {c.reason.value}"
        consumed = Counter(t.due_date for t in existing if t.uses_call_slot)
        new_tasks = [task for c in live.values() if c.key not in existing_by_key
                     if (task := self._new_task(patient, c, today, consumed, trace)) is not None]
        creates, merges, scripts = self._budget(survivors, new_tasks, consumed, trace)
        return PlanDiff(creates=tuple(creates), cancels=tuple(cancels), merges=tuple(merges),
                        call_scripts=tuple(scripts))

    def _match_all(self, patient: PatientFacts, encounters: Sequence[EncounterFacts],
                   trace: Trace) -> None:
        for enc in encounters:
            for rule in self.rules.rules:
                trace.matches.append((enc, rule, match_rule(rule, patient, enc)))

    def _desired(self, patient: PatientFacts, encounters: Sequence[EncounterFacts],
                 trace: Trace | None) -> tuple[dict[str, _Candidate], set[str]]:
        by_rule: dict[str, list[EncounterFacts]] = defaultdict(list)
        for enc in encounters:
            for rule in self.rules.rules:
                result = match_rule(rule, patient, enc)
                if trace is not None:
                    trace.matches.append((enc, rule, result))
                if result.matched:
                    by_rule[rule.rule_id].append(enc)
        live: dict[str, _Candidate] = {}
        superseded: set[str] = set()
        for rule in self.rules.rules:
            matched = by_rule.get(rule.rule_id)
            if not matched:
                continue
            matched.sort(key=_encounter_order)
            newest = matched[-1]
            for old in matched[:-1]:
                for spec in rule.followups:
                    key = plan_key(old.encounter_id, rule.rule_id, spec.offset_days)
                    superseded.add(key)
                    if trace is not None:
                        trace.outcomes[key] = (f"superseded by the newer encounter "
                                               f"{newest.his_id}")
            start = anchor_date(newest, patient.timezone)
            assert start is not None  # match_rule refuses encounters without an anchor
            for spec in rule.followups:
                key = plan_key(newest.encounter_id, rule.rule_id, spec.offset_days)
                live[key] = _Candidate(key, newest, rule, spec,
                                       start + dt.timedelta(days=spec.offset_days))
        return live, superseded

    def _new_task(self, patient: PatientFacts, c: _Candidate, today: dt.date,
                  consumed: Counter[dt.date], trace: Trace | None) -> PlannedTask | None:
        due = c.nominal_due
        grace = self.rules.late_grace_days
        if due < today - dt.timedelta(days=grace):
            if trace is not None:
                trace.outcomes[c.key] = (f"not planned: due {due} is more than {grace} days "
                                         f"before today ({today})")
            return None
        due = max(due, today)
        for _ in range(MAX_DEFER_DAYS):
            if consumed[due] < self.calls_per_day:
                break
            due += dt.timedelta(days=1)
        version = self.scripts.valid_on(c.spec.script_id, due)
        if version is None:
            if trace is not None:
                trace.outcomes[c.key] = (f"not planned: no version of script "
                                         f"{c.spec.script_id} is valid on {due}")
            return None
        start, end = c.rule.calling_window.bounds(due, patient.timezone)
        return PlannedTask(
            plan_key=c.key, patient_id=patient.patient_id, encounter_id=c.encounter.encounter_id,
            rule_id=c.rule.rule_id, offset_days=c.spec.offset_days, script_id=c.spec.script_id,
            script_version=version.version, call_scripts=(c.spec.script_id,), due_date=due,
            calling_window=c.rule.calling_window.format(), timezone=patient.timezone,
            window_start=start, window_end=end, priority=c.spec.priority,
            max_attempts=c.spec.max_attempts)

    def _budget(self, survivors: list[ExistingTask], new_tasks: list[PlannedTask],
                consumed: Counter[dt.date], trace: Trace | None,
                ) -> tuple[list[PlannedTask], list[Merge], list[CallScripts]]:
        days: dict[dt.date, list[_PoolEntry]] = defaultdict(list)
        for t in survivors:
            days[t.due_date].append(_PoolEntry(
                (t.priority, self._rule_order.get(t.rule_id, 1 << 30), t.encounter_id,
                 t.offset_days), t.plan_key, t.script_id, t, None))
        for n in new_tasks:
            days[n.due_date].append(_PoolEntry(
                (n.priority, self._rule_order[n.rule_id], n.encounter_id, n.offset_days),
                n.plan_key, n.script_id, None, n))
        creates: list[PlannedTask] = []
        merges: list[Merge] = []
        scripts: list[CallScripts] = []
        for day in sorted(days):
            entries = sorted(days[day], key=lambda e: (e.sort_key, e.key))
            slots = self.calls_per_day - consumed[day]
            if slots <= 0:  # only existing tasks can be here (new ones moved on): leave them
                continue
            hosts, riders = entries[:slots], entries[slots:]
            first = hosts[0]
            first_scripts = [first.script_id]
            for r in riders:
                if r.script_id not in first_scripts:
                    first_scripts.append(r.script_id)
            for h in hosts:
                call = tuple(first_scripts) if h is first else (h.script_id,)
                if h.new is not None:
                    creates.append(replace(h.new, call_scripts=call))
                    if trace is not None:
                        trace.outcomes[h.key] = (f"new task: call on {day}, script "
                                                 f"{h.new.script_id} v{h.new.script_version}"
                                                 + (f", also asks {', '.join(call[1:])}"
                                                    if len(call) > 1 else ""))
                elif h.existing is not None:
                    released = h.existing.status is TaskStatus.MERGED
                    if released or h.existing.call_scripts != call:
                        scripts.append(CallScripts(h.key, call, release=released))
            for r in riders:
                if r.new is not None:
                    creates.append(replace(r.new, status=TaskStatus.MERGED,
                                           merged_into_key=first.key))
                    if trace is not None:
                        trace.outcomes[r.key] = (f"new task merged into the call {first.key} "
                                                 f"on {day} (at most {self.calls_per_day} "
                                                 f"call(s) a day)")
                elif r.existing is not None and (r.existing.status is not TaskStatus.MERGED
                                                 or r.existing.merged_into_key != first.key):
                    merges.append(Merge(r.key, first.key, (r.script_id,)))
        return creates, merges, scripts


def suppression_reason(patient: PatientFacts,
                       encounters: Sequence[EncounterFacts]) -> CancelReason | None:
    """Why this patient must not be called at all now, or None."""
    if patient.deceased:
        return CancelReason.DECEASED
    if patient.opted_out:
        return CancelReason.OPTED_OUT
    if not patient.has_phone:
        return CancelReason.NO_PHONE
    if any(e.is_open_inpatient for e in encounters):
        return CancelReason.READMITTED
    return None


def _encounter_order(enc: EncounterFacts) -> tuple[dt.datetime, int]:
    anchor = enc.anchor
    assert anchor is not None
    return anchor, enc.encounter_id
