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
from dataclasses import dataclass

from core.calling_window import zone
from core.domain import EncounterFacts, PatientFacts
from core.enums import CancelReason, EncounterType, TaskStatus
from followup_rules.matching import MatchResult, anchor_date, match_rule
from followup_rules.model import FollowupSpec, Rule, RuleSet
from followup_rules.tasks import (
    CallScripts,
    Cancellation,
    ExistingTask,
    FollowupRef,
    Merge,
    PlanDiff,
    PlannedTask,
    ScriptCatalog,
    plan_key,
)

MAX_DEFER_DAYS = 60
_NO_CALLS: Counter[dt.date] = Counter()  # read-only: no calls made on any day


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A follow-up the rules want for the newest matching encounter."""

    key: str
    ref: FollowupRef
    encounter: EncounterFacts
    rule: Rule
    spec: FollowupSpec
    nominal_due: dt.date


@dataclass(frozen=True, slots=True)
class _Draft:
    """A new task before the contact budget decides whether it is a call or rides along."""

    candidate: _Candidate
    due: dt.date
    version: int
    window: str
    window_start: dt.datetime
    window_end: dt.datetime

    def task(self, patient_id: int, timezone: str, call_scripts: tuple[str, ...],
             status: TaskStatus = TaskStatus.PENDING,
             merged_into_key: str | None = None) -> PlannedTask:
        c = self.candidate
        return PlannedTask(
            plan_key=c.key, patient_id=patient_id, encounter_id=c.encounter.encounter_id,
            rule_id=c.rule.rule_id, offset_days=c.spec.offset_days, script_id=c.spec.script_id,
            script_version=self.version, call_scripts=call_scripts, due_date=self.due,
            calling_window=self.window, timezone=timezone,
            window_start=self.window_start, window_end=self.window_end,
            priority=c.spec.priority, max_attempts=c.spec.max_attempts, status=status,
            merged_into_key=merged_into_key)


@dataclass(slots=True)
class _PoolEntry:
    """A task competing for a call on one day (an existing mutable task or a new one)."""

    sort_key: tuple[int, int, int, int]
    key: str
    ref: FollowupRef
    script_id: str
    existing: ExistingTask | None
    new: _Draft | None


@dataclass(slots=True)
class Trace:
    """What `Planner.trace` collects: each rule check and each follow-up's fate."""

    matches: list[tuple[EncounterFacts, Rule, MatchResult]]
    outcomes: dict[FollowupRef, str]
    suppressed: str = ""


class Planner:
    """Turns facts into a `PlanDiff`. Holds immutable inputs (and a cache of window bounds)."""

    def __init__(self, rules: RuleSet, scripts: ScriptCatalog, calls_per_day: int = 1) -> None:
        if calls_per_day < 1:
            raise ValueError("calls_per_day must be at least 1")
        self.rules = rules
        self.scripts = scripts
        self.calls_per_day = calls_per_day
        self._rule_order = {r.rule_id: r.order for r in rules.rules}
        self._window_text = {r.rule_id: r.calling_window.format() for r in rules.rules}
        # (rule, day, zone) -> UTC window bounds; bounded by rules x days x zones in use
        self._bounds: dict[tuple[str, dt.date, str], tuple[dt.datetime, dt.datetime]] = {}
        # Rules worth checking per encounter type (the first criterion), in rule order.
        self._by_type = {t: tuple(r for r in rules.rules if not r.criteria.encounter_types
                                  or t in r.criteria.encounter_types) for t in EncounterType}
        self.uses_diagnoses = any(r.criteria.icd10_prefixes for r in rules.rules)
        self.uses_procedures = any(r.criteria.procedures for r in rules.rules)

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
                for enc in encounters:
                    for rule in self.rules.rules:
                        trace.matches.append((enc, rule, match_rule(rule, patient, enc)))
            return PlanDiff(cancels=tuple(Cancellation(t.plan_key, suppress)
                                          for t in existing if t.mutable))
        live, superseded = self._desired(patient, encounters, trace)
        if not existing and trace is None:  # the common case of a first plan: nothing to diff
            drafts = [d for c in live.values()
                      if (d := self._new_task(patient, c, today, _NO_CALLS, None)) is not None]
            creates, _, _ = self._budget(patient, [], drafts, _NO_CALLS, None)
            return PlanDiff(creates=tuple(creates))
        existing_keys = {t.plan_key for t in existing}
        # A follow-up with a call made or under way is done with, whatever its key says.
        handled = {t.ref for t in existing if t.uses_call_slot}
        cancels: list[Cancellation] = []
        survivors: list[ExistingTask] = []
        for t in existing:
            if not t.mutable:
                continue
            if (t.encounter_id, t.rule_id) in superseded:
                cancels.append(Cancellation(t.plan_key, CancelReason.SUPERSEDED))
            elif t.plan_key not in live:
                cancels.append(Cancellation(t.plan_key, CancelReason.NO_LONGER_PLANNED))
            else:
                survivors.append(t)
        if trace is not None:
            for t in existing:
                trace.outcomes.setdefault(t.ref, f"task exists ({t.status.value}, due "
                                          f"{t.due_date})")
            for c in cancels:
                ref = next(t.ref for t in existing if t.plan_key == c.plan_key)
                trace.outcomes[ref] = f"pending task cancelled: {c.reason.value}"
        consumed = Counter(t.due_date for t in existing if t.uses_call_slot)
        new_tasks = [task for c in live.values()
                     if c.key not in existing_keys and c.ref not in handled
                     if (task := self._new_task(patient, c, today, consumed, trace)) is not None]
        creates, merges, scripts = self._budget(patient, survivors, new_tasks, consumed, trace)
        return PlanDiff(creates=tuple(creates), cancels=tuple(cancels), merges=tuple(merges),
                        call_scripts=tuple(scripts))

    def _desired(self, patient: PatientFacts, encounters: Sequence[EncounterFacts],
                 trace: Trace | None) -> tuple[dict[str, _Candidate], set[tuple[int, str]]]:
        by_rule: dict[str, list[EncounterFacts]] = defaultdict(list)
        for enc in encounters:
            rules = self.rules.rules if trace is not None else self._by_type[enc.type]
            for rule in rules:
                result = match_rule(rule, patient, enc)
                if trace is not None:
                    trace.matches.append((enc, rule, result))
                if result.matched:
                    by_rule[rule.rule_id].append(enc)
        live: dict[str, _Candidate] = {}
        superseded: set[tuple[int, str]] = set()
        for rule in self.rules.rules:
            matched = by_rule.get(rule.rule_id)
            if not matched:
                continue
            if len(matched) > 1:
                matched.sort(key=_encounter_order)
            newest = matched[-1]
            for old in matched[:-1]:
                superseded.add((old.encounter_id, rule.rule_id))
                if trace is not None:
                    for spec in rule.followups:
                        trace.outcomes[(old.encounter_id, rule.rule_id, spec.offset_days)] = (
                            f"superseded by the newer encounter {newest.his_id}")
            start = anchor_date(newest, patient.timezone)
            assert start is not None  # match_rule refuses encounters without an anchor
            for spec in rule.followups:
                due = start + dt.timedelta(days=spec.offset_days)
                key = plan_key(newest.encounter_id, rule.rule_id, spec.offset_days, due)
                live[key] = _Candidate(key, (newest.encounter_id, rule.rule_id, spec.offset_days),
                                       newest, rule, spec, due)
        return live, superseded

    def _new_task(self, patient: PatientFacts, c: _Candidate, today: dt.date,
                  consumed: Counter[dt.date], trace: Trace | None) -> _Draft | None:
        due = c.nominal_due
        grace = self.rules.late_grace_days
        if due < today - dt.timedelta(days=grace):
            if trace is not None:
                trace.outcomes[c.ref] = (f"not planned: due {due} is more than {grace} days "
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
                trace.outcomes[c.ref] = (f"not planned: no version of script "
                                         f"{c.spec.script_id} is valid on {due}")
            return None
        key = (c.rule.rule_id, due, patient.timezone)
        bounds = self._bounds.get(key)
        if bounds is None:
            bounds = self._bounds[key] = c.rule.calling_window.bounds(due, patient.timezone)
        return _Draft(c, due, version.version, self._window_text[c.rule.rule_id], *bounds)

    def _budget(self, patient: PatientFacts, survivors: list[ExistingTask],
                new_tasks: list[_Draft], consumed: Counter[dt.date], trace: Trace | None,
                ) -> tuple[list[PlannedTask], list[Merge], list[CallScripts]]:
        days: dict[dt.date, list[_PoolEntry]] = defaultdict(list)
        for t in survivors:
            days[t.due_date].append(_PoolEntry(
                (t.priority, self._rule_order.get(t.rule_id, 1 << 30), t.encounter_id,
                 t.offset_days), t.plan_key, t.ref, t.script_id, t, None))
        for n in new_tasks:
            c = n.candidate
            days[n.due].append(_PoolEntry(
                (c.spec.priority, c.rule.order, c.encounter.encounter_id, c.spec.offset_days),
                c.key, c.ref, c.spec.script_id, None, n))
        creates: list[PlannedTask] = []
        merges: list[Merge] = []
        scripts: list[CallScripts] = []
        for day in sorted(days):
            entries = days[day]
            if len(entries) > 1:
                entries.sort(key=lambda e: (e.sort_key, e.key))
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
                    creates.append(h.new.task(patient.patient_id, patient.timezone, call))
                    if trace is not None:
                        also = f", also asks {', '.join(call[1:])}" if len(call) > 1 else ""
                        trace.outcomes[h.ref] = (f"new task: call on {day}, script "
                                                 f"{h.script_id} v{h.new.version}{also}")
                elif h.existing is not None:
                    released = h.existing.status is TaskStatus.MERGED
                    if released or h.existing.call_scripts != call:
                        scripts.append(CallScripts(h.key, call, release=released))
            for r in riders:
                if r.new is not None:
                    creates.append(r.new.task(patient.patient_id, patient.timezone,
                                              (r.script_id,), TaskStatus.MERGED, first.key))
                    if trace is not None:
                        trace.outcomes[r.ref] = (f"new task on {day}, merged into the call of "
                                                 f"{first.ref[1]} +{first.ref[2]}d (at most "
                                                 f"{self.calls_per_day} call(s) a day)")
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
