"""The pure planner: tasks, merges, budget, suppression, superseding, versions, idempotence."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from core.enums import CancelReason, EncounterType, TaskStatus
from followup_rules.explain import explain
from tests.unit.rules.factories import (
    NOW,
    FakeTaskStore,
    encounter,
    local,
    patient,
    planner,
)

IN, OUT, SURG = EncounterType.INPATIENT, EncounterType.OUTPATIENT, EncounterType.SURGERY


def plan_into(store: FakeTaskStore, encs: list, now: dt.datetime = NOW,  # type: ignore[type-arg]
              calls: int = 1, **patient_kw: object) -> None:
    store.apply(planner(calls).plan(patient(**patient_kw), encs, store.existing(), now))


def test_cardiology_discharge_plans_survey_and_three_checks() -> None:
    store = FakeTaskStore()
    diff = planner().plan(patient(), [encounter(1, IN, "CARD", local(2026, 3, 9))],
                          [], NOW)
    got = sorted((t.rule_id, t.offset_days, t.due_date.isoformat(), t.script_version,
                  t.status.value) for t in diff.creates)
    assert got == [
        ("cardiology-post-discharge", 3, "2026-03-12", 1, "pending"),
        ("cardiology-post-discharge", 7, "2026-03-16", 1, "pending"),
        # version 1 ends on 2026-03-31: the 30-day check on 2026-04-08 gets version 2
        ("cardiology-post-discharge", 30, "2026-04-08", 2, "pending"),
        ("inpatient-satisfaction", 2, "2026-03-11", 1, "pending"),
    ]
    t3 = next(t for t in diff.creates if t.offset_days == 3)
    assert t3.plan_key == "1:cardiology-post-discharge:3:2026-03-12"
    assert t3.calling_window == "09:00-11:30,14:00-19:30"
    assert t3.window_start == dt.datetime(2026, 3, 12, 1, 0, tzinfo=dt.UTC)
    assert t3.window_end == dt.datetime(2026, 3, 12, 11, 30, tzinfo=dt.UTC)
    assert (t3.priority, t3.max_attempts, t3.call_scripts) == (
        20, 3, ("cardiology-post-discharge",))
    store.apply(diff)
    assert planner().plan(patient(), [encounter(1, IN, "CARD", local(2026, 3, 9))],
                          store.existing(), NOW).is_empty


def test_same_day_tasks_merge_into_one_call_most_urgent_first() -> None:
    store = FakeTaskStore()
    # Inpatient survey (priority 60) due 03-11 and outpatient survey (70) due 03-11.
    encs = [encounter(1, IN, "CARD", local(2026, 3, 9)),
            encounter(2, OUT, "DERM", local(2026, 3, 10, 8))]
    plan_into(store, encs)
    day = {t for t in store.summary() if t[1] == "2026-03-11"}
    assert day == {
        ("inpatient-satisfaction", "2026-03-11", "pending",
         "inpatient-satisfaction+outpatient-satisfaction"),
        ("outpatient-satisfaction", "2026-03-11", "merged", "into inpatient-satisfaction"),
    }
    before = store.summary()
    plan_into(store, encs)
    assert store.summary() == before


def test_a_more_urgent_new_task_takes_over_the_days_call() -> None:
    store = FakeTaskStore()
    plan_into(store, [encounter(2, OUT, "DERM", local(2026, 3, 10, 8))])
    assert store.summary() == {("outpatient-satisfaction", "2026-03-11", "pending",
                                "outpatient-satisfaction")}
    # An operation today: post-operative (priority 10) due tomorrow too.
    encs = [encounter(2, OUT, "DERM", local(2026, 3, 10, 8)),
            encounter(3, SURG, "ORTH", local(2026, 3, 10, 11))]
    plan_into(store, encs)
    assert store.summary() == {
        ("post-operative", "2026-03-11", "pending", "post-operative+outpatient-satisfaction"),
        ("outpatient-satisfaction", "2026-03-11", "merged", "into post-operative"),
    }
    assert planner().plan(patient(), encs, store.existing(), NOW).is_empty


def test_budget_of_two_calls_a_day() -> None:
    store = FakeTaskStore()
    # Three tasks due 03-11: post-operative (10), inpatient survey (60), outpatient survey (70).
    encs = [encounter(1, IN, "CARD", local(2026, 3, 9)),
            encounter(2, OUT, "DERM", local(2026, 3, 10, 8)),
            encounter(3, SURG, "ORTH", local(2026, 3, 10, 11))]
    plan_into(store, encs, calls=2)
    day = {t for t in store.summary() if t[1] == "2026-03-11"}
    assert day == {
        ("post-operative", "2026-03-11", "pending", "post-operative+outpatient-satisfaction"),
        ("inpatient-satisfaction", "2026-03-11", "pending", "inpatient-satisfaction"),
        ("outpatient-satisfaction", "2026-03-11", "merged", "into post-operative"),
    }
    plan_into(store, encs, calls=1)  # the budget tightened: the second call joins the first
    day = {t for t in store.summary() if t[1] == "2026-03-11"}
    assert ("inpatient-satisfaction", "2026-03-11", "merged", "into post-operative") in day


def test_a_call_already_made_that_day_moves_a_new_task_to_the_next_day() -> None:
    store = FakeTaskStore()
    plan_into(store, [encounter(2, OUT, "DERM", local(2026, 3, 10, 8))])
    key = next(iter(store.tasks))
    store.set_status(key, TaskStatus.DONE)
    encs = [encounter(2, OUT, "DERM", local(2026, 3, 10, 8)),
            encounter(3, SURG, "ORTH", local(2026, 3, 10, 11))]
    plan_into(store, encs)
    assert ("post-operative", "2026-03-12", "pending", "post-operative") in store.summary()
    assert ("outpatient-satisfaction", "2026-03-11", "done",
            "outpatient-satisfaction") in store.summary()


def _planned_cardiology(store: FakeTaskStore) -> list:  # type: ignore[type-arg]
    encs = [encounter(1, IN, "CARD", local(2026, 3, 9))]
    plan_into(store, encs)
    assert len(store.tasks) == 4
    return encs


def test_deceased_cancels_pending_tasks_but_never_touches_done_ones() -> None:
    store = FakeTaskStore()
    encs = _planned_cardiology(store)
    done_key = next(k for k, t in store.tasks.items() if t.rule_id == "inpatient-satisfaction")
    store.set_status(done_key, TaskStatus.DONE)
    plan_into(store, encs, deceased=True)
    reasons = {t.rule_id + str(t.offset_days): store.extra[k]["reason"]
               for k, t in store.tasks.items()}
    assert reasons == {"inpatient-satisfaction2": None,
                       "cardiology-post-discharge3": CancelReason.DECEASED,
                       "cardiology-post-discharge7": CancelReason.DECEASED,
                       "cardiology-post-discharge30": CancelReason.DECEASED}
    assert store.tasks[done_key].status is TaskStatus.DONE
    assert planner().plan(patient(deceased=True), encs, store.existing(), NOW).is_empty


def test_opted_out_and_no_phone_cancel_and_create_nothing() -> None:
    for kw, reason in (({"opted_out": True}, CancelReason.OPTED_OUT),
                       ({"has_phone": False}, CancelReason.NO_PHONE)):
        store = FakeTaskStore()
        encs = _planned_cardiology(store)
        claimed = next(iter(store.tasks))
        store.set_status(claimed, TaskStatus.CLAIMED)
        plan_into(store, encs, **kw)
        statuses = sorted(t.status.value for t in store.tasks.values())
        assert statuses == ["cancelled", "cancelled", "cancelled", "claimed"]
        assert {store.extra[k]["reason"] for k, t in store.tasks.items()
                if t.status is TaskStatus.CANCELLED} == {reason}
        fresh = planner().plan(patient(**kw), encs, [], NOW)
        assert fresh.creates == ()


def test_readmission_cancels_pending_tasks() -> None:
    store = FakeTaskStore()
    encs = _planned_cardiology(store)
    readmitted = [*encs, encounter(5, IN, "CARD", None, admit=local(2026, 3, 10, 8))]
    plan_into(store, readmitted)
    assert {str(store.extra[k]["reason"]) for k in store.tasks} == {"readmitted"}
    # Discharged again: the new stay's plan supersedes the old one; new tasks are created.
    again = [*encs, encounter(5, IN, "CARD", local(2026, 3, 14),
                              admit=local(2026, 3, 10, 8))]
    later = NOW + dt.timedelta(days=4)
    plan_into(store, again, now=later)
    pending = {(t.encounter_id, t.rule_id, t.due_date.isoformat())
               for t in store.tasks.values() if t.status is TaskStatus.PENDING}
    assert pending == {(5, "inpatient-satisfaction", "2026-03-16"),
                       (5, "cardiology-post-discharge", "2026-03-17"),
                       (5, "cardiology-post-discharge", "2026-03-21"),
                       (5, "cardiology-post-discharge", "2026-04-13")}


def test_newer_encounter_supersedes_the_older_plan() -> None:
    store = FakeTaskStore()
    encs = _planned_cardiology(store)
    first_check = next(k for k, t in store.tasks.items() if t.offset_days == 3)
    store.set_status(first_check, TaskStatus.DONE)
    newer = [*encs, encounter(7, IN, "CARD", local(2026, 3, 13), admit=local(2026, 3, 12))]
    plan_into(store, newer, now=NOW + dt.timedelta(days=3))
    old = {(t.offset_days, t.status.value, str(store.extra[k]["reason"]))
           for k, t in store.tasks.items() if t.encounter_id == 1}
    assert old == {(2, "cancelled", "superseded"), (3, "done", "None"),
                   (7, "cancelled", "superseded"), (30, "cancelled", "superseded")}
    new = sorted((t.offset_days, t.status.value) for t in store.tasks.values()
                 if t.encounter_id == 7)
    assert new == [(2, "pending"), (3, "pending"), (7, "pending"), (30, "pending")]


def test_changed_encounter_no_longer_planned_and_corrected_discharge_date() -> None:
    store = FakeTaskStore()
    encs = _planned_cardiology(store)
    # The HIS corrects the department: CARD was wrong, it was dermatology (no checks).
    fixed = [replace(encs[0], department_code="DERM")]
    plan_into(store, fixed)
    cancelled = {t.rule_id for k, t in store.tasks.items()
                 if store.extra[k]["reason"] is CancelReason.NO_LONGER_PLANNED}
    assert cancelled == {"cardiology-post-discharge"}
    # A corrected discharge date moves the survey: old task cancelled, new one on the new day.
    moved = [replace(fixed[0], discharge_at=local(2026, 3, 10, 9))]
    plan_into(store, moved)
    survey = sorted((t.due_date.isoformat(), t.status.value) for t in store.tasks.values()
                    if t.rule_id == "inpatient-satisfaction")
    assert survey == [("2026-03-11", "cancelled"), ("2026-03-12", "pending")]


def test_a_done_follow_up_is_not_planned_again_after_a_date_correction() -> None:
    store = FakeTaskStore()
    encs = [encounter(2, OUT, "DERM", local(2026, 3, 9, 8))]
    plan_into(store, encs)
    store.set_status(next(iter(store.tasks)), TaskStatus.DONE)
    moved = [replace(encs[0], discharge_at=local(2026, 3, 10, 8), admit_at=local(2026, 3, 10, 7))]
    diff = planner().plan(patient(), moved, store.existing(), NOW)
    assert diff.creates == () and diff.cancels == ()  # the old key: done, left alone
    # whereas a pending one moves to the corrected day
    other = FakeTaskStore()
    plan_into(other, encs)
    plan_into(other, moved)
    assert sorted((t.due_date.isoformat(), t.status.value) for t in other.tasks.values()) == [
        ("2026-03-10", "cancelled"), ("2026-03-11", "pending")]


def test_host_cancelled_releases_its_rider() -> None:
    store = FakeTaskStore()
    encs = [encounter(2, OUT, "DERM", local(2026, 3, 10, 8)),
            encounter(3, SURG, "ORTH", local(2026, 3, 10, 11))]
    plan_into(store, encs)
    # The operation is removed from the HIS: post-operative is no longer planned, and the
    # outpatient survey must become a call of its own again.
    plan_into(store, encs[:1])
    assert store.summary() == {
        ("post-operative", "2026-03-11", "cancelled", "no_longer_planned"),
        ("outpatient-satisfaction", "2026-03-11", "pending", "outpatient-satisfaction"),
    }


def test_script_version_is_the_one_valid_on_the_due_date() -> None:
    p = planner()
    on_30th = p.plan(patient(), [encounter(3, SURG, "ORTH", local(2026, 6, 29, 11))], [],
                     local(2026, 6, 29, 12))
    on_1st = p.plan(patient(), [encounter(3, SURG, "ORTH", local(2026, 6, 30, 11))], [],
                    local(2026, 6, 30, 12))
    assert [(t.due_date.isoformat(), t.script_version) for t in on_30th.creates] == [
        ("2026-06-30", 1)]
    assert [(t.due_date.isoformat(), t.script_version) for t in on_1st.creates] == [
        ("2026-07-01", 2)]


def test_no_valid_version_means_no_task_and_explain_says_why() -> None:
    from core.domain import ScriptVersion

    scripts = [ScriptVersion("post-operative", 1, valid_until=dt.date(2026, 3, 10))]
    p = planner(scripts=scripts)
    encs = [encounter(3, SURG, "ORTH", local(2026, 3, 10, 11))]
    assert p.plan(patient(), encs, [], NOW).creates == ()
    text = "\n".join(explain(p, patient(), encs, [], NOW).lines())
    assert "no version of script post-operative is valid on 2026-03-11" in text


def test_old_discharge_skips_offsets_past_the_grace_period() -> None:
    # Discharged 2026-03-05: +2d (03-07) and +3d (03-08) are 2-3 days late: 03-08 is within
    # the 2-day grace and is planned for today; 03-07 is skipped; +7d and +30d are normal.
    diff = planner().plan(patient(), [encounter(1, IN, "CARD", local(2026, 3, 5))], [], NOW)
    got = sorted((t.offset_days, t.due_date.isoformat()) for t in diff.creates)
    assert got == [(3, "2026-03-10"), (7, "2026-03-12"), (30, "2026-04-04")]
    assert all(t.status is TaskStatus.PENDING for t in diff.creates)


def test_explain_names_the_rule_and_the_failing_criterion() -> None:
    encs = [encounter(1, IN, "ORTH", local(2026, 3, 9))]
    ex = explain(planner(), patient(), encs, [], NOW)
    by_rule = {v.rule_id: v for v in ex.verdicts}
    assert by_rule["cardiology-post-discharge"].reason == (
        "department ORTH not in [CARD]")
    assert by_rule["surgery-post-discharge"].matched
    assert by_rule["surgery-post-discharge"].followups[0].startswith(
        "+3d surgery-post-discharge: new task: call on 2026-03-12")
    assert by_rule["outpatient-satisfaction"].reason == (
        "encounter type inpatient not in [outpatient]")
    lines = ex.lines()
    assert lines[0] == "patient P1" and "  encounter E1" in lines
    dead = explain(planner(), patient(deceased=True), encs, [], NOW)
    assert dead.suppressed == "deceased"
    assert any("suppressed: deceased" in f for v in dead.verdicts for f in v.followups)
