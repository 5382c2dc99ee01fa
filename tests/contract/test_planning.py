"""`followup plan` against the real store (SQLite and PostgreSQL): exactly the expected task
rows for hand-written encounters, each suppression reason, merges, and incremental re-plans."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from core.clock import FakeClock
from core.store.db import Database
from core.store.models import Department, Encounter, FollowupTask, Patient
from followup_rules.store import PlanningService
from followup_rules.task_listing import TaskFilter, list_tasks
from followup_rules.task_writer import TaskWriter, plan_work
from followup_rules.work_loader import load_departments, load_work
from tests.unit.rules.factories import NOW, local, planner

DEPTS = {"CARD": 1, "ORTH": 2, "DERM": 3, "ONC": 4}


def _patient(pid: int, **kw: Any) -> dict[str, Any]:
    row = {"id": pid, "his_id": f"P{pid}", "mrn": f"M{pid}", "name": "患者", "sex": "female",
           "birth_date": dt.date(1956, 5, 1), "phone": f"+86138000000{pid:02d}",
           "phone_alt": None, "language": "zh-CN", "timezone": "Asia/Shanghai",
           "deceased": False, "opt_out_phone": False, "opt_out_sms": False,
           "consent_phone": True, "consent_sms": False, "content_hash": "p1",
           "plan_dirty": True, "updated_at": NOW}
    row.update(kw)
    return row


def _encounter(eid: int, pid: int, etype: str, dept: str, discharge: dt.datetime | None,
               admit: dt.datetime | None = None) -> dict[str, Any]:
    if admit is None:
        assert discharge is not None
        admit = discharge - dt.timedelta(days=4 if etype == "inpatient" else 0, hours=1)
    return {"id": eid, "his_id": f"E{eid}", "patient_id": pid, "type": etype,
            "department_id": DEPTS[dept], "attending_doctor": None, "admit_at": admit,
            "discharge_at": discharge, "diagnoses": ["I21.0"], "procedures": [],
            "disposition": "home", "content_hash": "e1", "plan_dirty": True,
            "updated_at": NOW}


def _seed(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(insert(Department), [{"id": i, "code": c, "name": c, "name_en": c,
                                           "retention_days": None} for c, i in DEPTS.items()])
        conn.execute(insert(Patient), [_patient(1), _patient(2), _patient(3), _patient(4),
                                       _patient(5), _patient(6), _patient(7, phone=None)])
        conn.execute(insert(Encounter), [
            _encounter(11, 1, "inpatient", "CARD", local(2026, 3, 9)),
            _encounter(21, 2, "outpatient", "DERM", local(2026, 3, 10, 8)),
            _encounter(22, 2, "surgery", "ORTH", local(2026, 3, 10, 11)),
            _encounter(31, 3, "inpatient", "ORTH", local(2026, 3, 9)),
            _encounter(41, 4, "inpatient", "ONC", local(2026, 3, 9)),
            _encounter(51, 5, "outpatient", "DERM", local(2026, 3, 10, 8)),
            _encounter(61, 6, "inpatient", "CARD", local(2026, 3, 1)),
            _encounter(71, 7, "outpatient", "DERM", local(2026, 3, 10, 8)),
        ])


def _rows(db: Database) -> set[tuple[Any, ...]]:
    t = FollowupTask.__table__.c
    with db.engine.connect() as conn:
        keys = dict(conn.execute(select(t.id, t.plan_key)).all())
        rows = conn.execute(select(
            t.patient_id, t.encounter_id, t.rule_id, t.offset_days, t.due_date,
            t.script_id, t.script_version, t.status, t.cancel_reason, t.merged_into_id,
            t.call_scripts, t.department_id)).all()
    out = set()
    for r in rows:
        into = keys[r.merged_into_id].split(":")[1] if r.merged_into_id else None
        out.add((r.patient_id, r.encounter_id, r.rule_id, r.offset_days, r.due_date.isoformat(),
                 f"{r.script_id}@v{r.script_version}", str(r.status),
                 str(r.cancel_reason) if r.cancel_reason else None, into,
                 "+".join(r.call_scripts), r.department_id))
    return out


FIRST_PLAN = {
    # P1: cardiology discharge 03-09: survey T+2d, checks T+3/7/30d (v2 valid from April)
    (1, 11, "inpatient-satisfaction", 2, "2026-03-11", "inpatient-satisfaction@v1", "pending",
     None, None, "inpatient-satisfaction", 1),
    (1, 11, "cardiology-post-discharge", 3, "2026-03-12", "cardiology-post-discharge@v1",
     "pending", None, None, "cardiology-post-discharge", 1),
    (1, 11, "cardiology-post-discharge", 7, "2026-03-16", "cardiology-post-discharge@v1",
     "pending", None, None, "cardiology-post-discharge", 1),
    (1, 11, "cardiology-post-discharge", 30, "2026-04-08", "cardiology-post-discharge@v2",
     "pending", None, None, "cardiology-post-discharge", 1),
    # P2: clinic visit and an operation the same day: one call on 03-11 asks both scripts
    (2, 22, "post-operative", 1, "2026-03-11", "post-operative@v1", "pending", None, None,
     "post-operative+outpatient-satisfaction", 2),
    (2, 21, "outpatient-satisfaction", 1, "2026-03-11", "outpatient-satisfaction@v1",
     "merged", None, "post-operative", "outpatient-satisfaction", 3),
    # P3: orthopaedic surgery discharge
    (3, 31, "inpatient-satisfaction", 2, "2026-03-11", "inpatient-satisfaction@v1", "pending",
     None, None, "inpatient-satisfaction", 2),
    (3, 31, "surgery-post-discharge", 3, "2026-03-12", "surgery-post-discharge@v1", "pending",
     None, None, "surgery-post-discharge", 2),
    (3, 31, "surgery-post-discharge", 7, "2026-03-16", "surgery-post-discharge@v1", "pending",
     None, None, "surgery-post-discharge", 2),
    (3, 31, "surgery-post-discharge", 30, "2026-04-08", "surgery-post-discharge@v1", "pending",
     None, None, "surgery-post-discharge", 2),
    # P4: oncology discharge
    (4, 41, "inpatient-satisfaction", 2, "2026-03-11", "inpatient-satisfaction@v1", "pending",
     None, None, "inpatient-satisfaction", 4),
    (4, 41, "oncology-post-discharge", 3, "2026-03-12", "oncology-post-discharge@v1", "pending",
     None, None, "oncology-post-discharge", 4),
    (4, 41, "oncology-post-discharge", 7, "2026-03-16", "oncology-post-discharge@v1", "pending",
     None, None, "oncology-post-discharge", 4),
    (4, 41, "oncology-post-discharge", 30, "2026-04-08", "oncology-post-discharge@v1",
     "pending", None, None, "oncology-post-discharge", 4),
    # P5: clinic visit
    (5, 51, "outpatient-satisfaction", 1, "2026-03-11", "outpatient-satisfaction@v1",
     "pending", None, None, "outpatient-satisfaction", 3),
    # P6: discharged 03-01: T+2d and T+3d are past the 2-day grace (skipped); T+7d (03-08) is
    # within it and is called today; T+30d as usual
    (6, 61, "cardiology-post-discharge", 7, "2026-03-10", "cardiology-post-discharge@v1",
     "pending", None, None, "cardiology-post-discharge", 1),
    (6, 61, "cardiology-post-discharge", 30, "2026-03-31", "cardiology-post-discharge@v1",
     "pending", None, None, "cardiology-post-discharge", 1),
    # P7: no phone number: nothing
}


def _service(db: Database, clock: FakeClock, **kw: Any) -> PlanningService:
    return PlanningService(db, planner(), clock, batch_patients=3, workers=0, **kw)


def _dirty(db: Database) -> tuple[int, int]:
    with db.engine.connect() as conn:
        p = conn.execute(select(Patient.id).where(Patient.plan_dirty)).all()
        e = conn.execute(select(Encounter.id).where(Encounter.plan_dirty)).all()
    return len(p), len(e)


def test_plan_creates_exactly_the_expected_tasks_and_is_idempotent(db: Database) -> None:
    _seed(db)
    clock = FakeClock(NOW)
    counts = _service(db, clock).run()
    assert _rows(db) == FIRST_PLAN
    assert (counts.patients, counts.encounters, counts.created, counts.merged) == (7, 8, 17, 1)
    assert _dirty(db) == (0, 0)
    t = FollowupTask.__table__.c
    with db.engine.connect() as conn:
        row = conn.execute(select(t.plan_key, t.window_start, t.window_end, t.next_attempt_at,
                                  t.calling_window, t.timezone, t.priority, t.max_attempts,
                                  t.attempts).where(t.encounter_id == 51)).one()
    assert row.plan_key == "51:outpatient-satisfaction:1:2026-03-11"
    assert row.window_start == dt.datetime(2026, 3, 11, 1, 0, tzinfo=dt.UTC)
    assert row.window_end == dt.datetime(2026, 3, 11, 11, 30, tzinfo=dt.UTC)
    assert row.next_attempt_at == row.window_start
    assert (row.calling_window, row.timezone, row.priority, row.max_attempts, row.attempts) == (
        "09:00-11:30,14:00-19:30", "Asia/Shanghai", 70, 2, 0)

    again = _service(db, clock).run()
    assert (again.patients, again.created) == (0, 0)
    forced = _service(db, clock).run(everyone=True)  # `followup plan --all` changes nothing
    assert (forced.patients, forced.created, sum(forced.cancelled.values()),
            forced.merged) == (7, 0, 0, 0)
    assert _rows(db) == FIRST_PLAN


def test_each_suppression_reason_cancels_with_the_reason(db: Database) -> None:
    _seed(db)
    clock = FakeClock(NOW)
    _service(db, clock).run()
    clock.advance(dt.timedelta(hours=2))
    with db.engine.begin() as conn:
        conn.execute(update(Patient).where(Patient.id == 3)
                     .values(deceased=True, content_hash="p2", plan_dirty=True))
        conn.execute(update(Patient).where(Patient.id == 4)
                     .values(opt_out_phone=True, content_hash="p2", plan_dirty=True))
        conn.execute(insert(Encounter), [
            _encounter(52, 5, "inpatient", "CARD", None, admit=local(2026, 3, 10, 10)),
            _encounter(62, 6, "inpatient", "CARD", local(2026, 3, 10, 9),
                       admit=local(2026, 3, 8))])
    counts = _service(db, clock).run()
    assert counts.patients == 4
    assert dict(counts.cancelled) == {"deceased": 4, "opted_out": 4, "readmitted": 1,
                                      "superseded": 2}
    rows = _rows(db)
    status = {(r[0], r[2], r[3]): (r[6], r[7]) for r in rows}
    assert {k: v for k, v in status.items() if k[0] == 3} == {
        (3, "inpatient-satisfaction", 2): ("cancelled", "deceased"),
        (3, "surgery-post-discharge", 3): ("cancelled", "deceased"),
        (3, "surgery-post-discharge", 7): ("cancelled", "deceased"),
        (3, "surgery-post-discharge", 30): ("cancelled", "deceased")}
    assert {v for k, v in status.items() if k[0] == 4} == {("cancelled", "opted_out")}
    assert status[(5, "outpatient-satisfaction", 1)] == ("cancelled", "readmitted")
    p6 = sorted((r[1], r[3], r[4], r[6], r[7]) for r in rows if r[0] == 6)
    assert p6 == [(61, 7, "2026-03-10", "cancelled", "superseded"),
                  (61, 30, "2026-03-31", "cancelled", "superseded"),
                  (62, 2, "2026-03-12", "pending", None),
                  (62, 3, "2026-03-13", "pending", None),
                  (62, 7, "2026-03-17", "pending", None),
                  (62, 30, "2026-04-09", "pending", None)]
    # P1 and P2 were not touched
    assert {r for r in rows if r[0] in (1, 2)} == {r for r in FIRST_PLAN if r[0] in (1, 2)}


def test_only_the_changed_encounter_is_replanned(db: Database) -> None:
    _seed(db)
    clock = FakeClock(NOW)
    _service(db, clock).run()
    with db.engine.begin() as conn:  # the HIS corrects P1's department: orthopaedics
        conn.execute(update(Encounter).where(Encounter.id == 11).values(
            department_id=DEPTS["ORTH"], content_hash="e2", plan_dirty=True))
    counts = _service(db, clock).run()
    assert (counts.patients, counts.encounters) == (1, 1)
    assert dict(counts.cancelled) == {"no_longer_planned": 3}
    assert counts.created == 3
    rows = _rows(db)
    assert {r for r in rows if r[0] != 1} == {r for r in FIRST_PLAN if r[0] != 1}
    p1 = sorted((r[2], r[3], r[6], r[7]) for r in rows if r[0] == 1)
    assert p1 == [("cardiology-post-discharge", 3, "cancelled", "no_longer_planned"),
                  ("cardiology-post-discharge", 7, "cancelled", "no_longer_planned"),
                  ("cardiology-post-discharge", 30, "cancelled", "no_longer_planned"),
                  ("inpatient-satisfaction", 2, "pending", None),
                  ("surgery-post-discharge", 3, "pending", None),
                  ("surgery-post-discharge", 7, "pending", None),
                  ("surgery-post-discharge", 30, "pending", None)]
    assert _dirty(db) == (0, 0)


def test_a_row_changed_while_planning_stays_dirty(db: Database) -> None:
    _seed(db)
    with db.engine.connect() as conn:
        sparse = load_work(conn, [7, 2], load_departments(conn))  # read with an IN list
        dense = load_work(conn, [2, 3, 4], load_departments(conn))  # read as a range
        work = [w for w in sparse if w.patient.patient_id == 2]
    assert [w.patient.his_id for w in sparse] == ["P2", "P7"]
    assert [len(w.encounters) for w in sparse] == [2, 1]
    assert [w.patient.his_id for w in dense] == ["P2", "P3", "P4"]
    assert dense[0].encounters == work[0].encounters
    with db.engine.begin() as conn:  # the HIS sync changes one encounter meanwhile
        conn.execute(update(Encounter).where(Encounter.id == 21).values(content_hash="e2"))
    result = plan_work(planner(), work, NOW)
    writer = TaskWriter(db.dialect, db.engine.dialect.paramstyle)
    with db.engine.begin() as conn:
        writer.write(conn, result, NOW)
        writer.clear_encounters(conn, [(i, h) for k, i, h in result.seen if k == "e"])
    with db.engine.connect() as conn:
        dirty = dict(conn.execute(select(Encounter.id, Encounter.plan_dirty)
                                  .where(Encounter.patient_id == 2)).all())
        assert dirty == {21: True, 22: False}
        assert not conn.execute(select(Patient.plan_dirty).where(Patient.id == 2)).scalar()


def test_worker_pool_plans_the_same_as_inline(db: Database) -> None:
    _seed(db)
    service = PlanningService(db, planner(), FakeClock(NOW), batch_patients=2,
                              workers=1, pool_min_patients=1)
    counts = service.run()
    assert counts.patients == 7
    assert _rows(db) == FIRST_PLAN


def test_explain_and_list_tasks(db: Database) -> None:
    _seed(db)
    service = _service(db, FakeClock(NOW))
    service.run()
    text = "\n".join(service.explain("M1").lines())
    assert "rule cardiology-post-discharge: MATCHED" in text
    assert "+3d cardiology-post-discharge: task exists (pending, due 2026-03-12)" in text
    assert "rule surgery-post-discharge: no - department CARD not in [SURG, GSURG, ORTH" in text
    from core.errors import NotFound

    with pytest.raises(NotFound):
        service.explain("nobody")
    lines, total = list_tasks(db, TaskFilter(department="card", due_to=dt.date(2026, 3, 12)))
    assert total == 3
    assert [(t.patient_his_id, t.rule_id, t.due_date.isoformat()) for t in lines] == [
        ("P6", "cardiology-post-discharge", "2026-03-10"),
        ("P1", "inpatient-satisfaction", "2026-03-11"),
        ("P1", "cardiology-post-discharge", "2026-03-12")]
    merged, _ = list_tasks(db, TaskFilter(status=None, patient="P2"))
    notes = {t.rule_id: t.note for t in merged}
    assert notes["outpatient-satisfaction"].startswith("asked in call #")
