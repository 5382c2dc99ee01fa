"""Claiming due tasks: order, suppression at dial time, windows, holidays, one per patient."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from core.calling_window import CallingRules
from core.enums import CancelReason, EncounterType, Sex, TaskStatus
from core.store.db import Database
from core.store.models import Department, Encounter, FollowupTask, Patient
from dialer.claims import DialerAlreadyRunning, SingleDialerLock, TaskClaimer

TZ = "Asia/Shanghai"
# 2026-03-10 10:00 in Shanghai
NOW = dt.datetime(2026, 3, 10, 2, 0, tzinfo=dt.UTC)
RULES = CallingRules.from_settings("08:00-20:00", ["2026-03-12"])


def _seed(db: Database, patients: list[dict[str, object]], tasks: list[dict[str, object]]) -> None:
    with db.session() as s:
        s.execute(insert(Department), [{"id": 1, "code": "CARD", "name": "心内科"}])
        rows = []
        for i, extra in enumerate(patients, start=1):
            row = {"id": i, "his_id": f"P{i}", "mrn": f"M{i}", "name": f"病人{i}",
                   "sex": Sex.FEMALE, "birth_date": dt.date(1960, 1, 1),
                   "phone": f"+861380013800{i % 10}", "language": "zh-CN", "timezone": TZ,
                   "content_hash": "h", "updated_at": NOW, "plan_dirty": False}
            row.update(extra)
            rows.append(row)
        s.execute(insert(Patient), rows)
        s.execute(insert(Encounter), [
            {"id": i, "his_id": f"E{i}", "patient_id": i, "type": EncounterType.OUTPATIENT,
             "department_id": 1, "admit_at": NOW - dt.timedelta(days=3), "discharge_at": None,
             "content_hash": "h", "updated_at": NOW, "plan_dirty": False,
             "diagnoses": [], "procedures": []}
            for i in range(1, len(patients) + 1)])
        trows = []
        for n, t in enumerate(tasks, start=1):
            row = {"plan_key": f"k{n}", "patient_id": 1, "encounter_id": 1, "department_id": 1,
                   "rule_id": "r", "offset_days": n, "script_id": "s", "script_version": 1,
                   "call_scripts": ["s"], "due_date": NOW.date(),
                   "calling_window": "09:00-11:30,14:00-19:30", "timezone": TZ,
                   "window_start": NOW, "window_end": NOW, "priority": 50,
                   "status": TaskStatus.PENDING, "attempts": 0, "max_attempts": 3,
                   "next_attempt_at": NOW - dt.timedelta(minutes=1), "created_at": NOW,
                   "updated_at": NOW}
            row.update(t)
            row["encounter_id"] = row["patient_id"]
            trows.append(row)
        s.execute(insert(FollowupTask), trows)


def _claimer(db: Database, owner: str = "d1") -> TaskClaimer:
    return TaskClaimer(db, owner, dt.timedelta(minutes=5), RULES, TZ)


def _tasks(db: Database) -> dict[str, FollowupTask]:
    with db.session() as s:
        return {t.plan_key: t for t in s.execute(select(FollowupTask)).scalars()}


def test_claims_most_urgent_first_and_only_due(db: Database) -> None:
    _seed(db, [{}, {}, {}], [
        {"patient_id": 1, "priority": 50},
        {"patient_id": 2, "priority": 1},
        {"patient_id": 3, "priority": 20, "next_attempt_at": NOW + dt.timedelta(hours=1)},
    ])
    got = _claimer(db).claim(NOW, limit=10)
    assert [c.patient_id for c in got] == [2, 1]
    t = _tasks(db)
    assert t["k1"].status is TaskStatus.CLAIMED and t["k1"].lease_owner == "d1"
    assert t["k1"].lease_expires_at == NOW + dt.timedelta(minutes=5)
    assert t["k3"].status is TaskStatus.PENDING


def test_one_at_a_time_claims_follow_priority_then_due_time_across_levels(
        db: Database) -> None:
    # levels with only future work (5), due and future work mixed (10, 30), ties on the due
    # time broken by id: each claim of one takes the next of a plain sort of the due rows
    spec = [(30, -5), (10, -1), (10, -9), (50, -30), (20, 60), (10, 30), (30, -5), (5, 10),
            (5, 20), (50, -1), (30, -60), (10, -9)]
    _seed(db, [{} for _ in spec], [
        {"patient_id": i, "priority": prio, "next_attempt_at": NOW + dt.timedelta(minutes=m)}
        for i, (prio, m) in enumerate(spec, start=1)])
    with db.session() as s:
        rows = s.execute(select(FollowupTask.priority, FollowupTask.next_attempt_at,
                                FollowupTask.id, FollowupTask.patient_id)).all()
    expected = [r.patient_id for r in sorted(r for r in rows if r.next_attempt_at <= NOW)]
    claimer = _claimer(db)
    got = [c.patient_id for _ in spec for c in claimer.claim(NOW, limit=1)]
    assert got == expected and len(got) == 8


def test_dial_time_suppression_cancels_with_reason(db: Database) -> None:
    _seed(db, [{"deceased": True}, {"opt_out_phone": True}, {"phone": None}, {}], [
        {"patient_id": 1}, {"patient_id": 2}, {"patient_id": 3}, {"patient_id": 4},
    ])
    with db.session() as s:  # patient 4 is in hospital again
        s.execute(insert(Encounter), [{
            "id": 100, "his_id": "E-readmit", "patient_id": 4, "type": EncounterType.INPATIENT,
            "department_id": 1, "admit_at": NOW - dt.timedelta(days=1), "discharge_at": None,
            "content_hash": "h", "updated_at": NOW, "plan_dirty": False,
            "diagnoses": [], "procedures": []}])
    assert _claimer(db).claim(NOW, limit=10) == []
    t = _tasks(db)
    assert [(t[k].status, t[k].cancel_reason) for k in ("k1", "k2", "k3", "k4")] == [
        (TaskStatus.CANCELLED, CancelReason.DECEASED),
        (TaskStatus.CANCELLED, CancelReason.OPTED_OUT),
        (TaskStatus.CANCELLED, CancelReason.NO_PHONE),
        (TaskStatus.CANCELLED, CancelReason.READMITTED),
    ]


def test_outside_the_window_is_deferred_to_the_next_opening(db: Database) -> None:
    _seed(db, [{}], [{"patient_id": 1, "calling_window": "14:00-19:30"}])
    assert _claimer(db).claim(NOW, limit=5) == []
    # 14:00 Shanghai = 06:00 UTC on the same day
    assert _tasks(db)["k1"].next_attempt_at == dt.datetime(2026, 3, 10, 6, 0, tzinfo=dt.UTC)
    assert _tasks(db)["k1"].status is TaskStatus.PENDING


def test_holidays_are_skipped(db: Database) -> None:
    late = dt.datetime(2026, 3, 11, 12, 0, tzinfo=dt.UTC)  # 20:00 local, after hours
    _seed(db, [{}], [{"patient_id": 1, "next_attempt_at": late}])
    assert _claimer(db).claim(late, limit=5) == []
    # the 12th is a holiday: next opening is 09:00 local on the 13th
    assert _tasks(db)["k1"].next_attempt_at == dt.datetime(2026, 3, 13, 1, 0, tzinfo=dt.UTC)


def test_one_claimed_task_per_patient(db: Database) -> None:
    _seed(db, [{}], [{"patient_id": 1}, {"patient_id": 1, "offset_days": 7}])
    first = _claimer(db, "d1").claim(NOW, limit=5)
    assert len(first) == 1
    assert _claimer(db, "d2").claim(NOW, limit=5) == []


@pytest.mark.postgres
def test_concurrent_claimers_never_share_a_task_or_patient(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("several dialer processes need PostgreSQL; SQLite allows one dialer")
    n = 60
    _seed(db, [{} for _ in range(n)], [{"patient_id": i} for i in range(1, n + 1)])
    results: dict[str, list[int]] = {}
    others = [Database(db.url) for _ in range(3)]

    def work(name: str, database: Database) -> None:
        claimer = TaskClaimer(database, name, dt.timedelta(minutes=5), RULES, TZ)
        got: list[int] = []
        empty = 0
        while empty < 3:  # keep claiming until the work is gone
            batch = [c.task_id for c in claimer.claim(NOW, limit=4)]
            empty = empty + 1 if not batch else 0
            got += batch
        results[name] = got

    threads = [threading.Thread(target=work, args=(f"d{i}", d)) for i, d in enumerate(others)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for d in others:
        d.dispose()
    all_ids = [i for ids in results.values() for i in ids]
    assert len(all_ids) == len(set(all_ids)) == n


def test_single_dialer_lock(tmp_path: Path) -> None:
    a = SingleDialerLock(tmp_path / "dialer.lock")
    b = SingleDialerLock(tmp_path / "dialer.lock")
    a.acquire()
    with pytest.raises(DialerAlreadyRunning):
        b.acquire()
    a.release()
    b.acquire()
    b.release()


def test_daily_cap_per_patient_defers_to_tomorrow(db: Database) -> None:
    from core.enums import AttemptStatus
    from core.store.models import CallAttempt

    _seed(db, [{}], [{"patient_id": 1}, {"patient_id": 1, "offset_days": 9,
                                          "status": TaskStatus.FAILED}])
    with db.session() as s:  # three calls already rang this patient today (local day)
        s.execute(insert(CallAttempt), [
            {"task_id": 2, "patient_id": 1, "department_id": 1, "number": n,
             "status": AttemptStatus.ENDED, "backend": "sim", "phone": "+8613800138001",
             "dialled": True, "created_at": NOW - dt.timedelta(hours=n)} for n in (1, 2, 3)])
    rules = CallingRules.from_settings("08:00-20:00", [], max_calls_per_patient_per_day=3)
    claimer = TaskClaimer(db, "d1", dt.timedelta(minutes=5), rules, TZ)
    assert claimer.claim(NOW, limit=5) == []
    # tomorrow 09:00 Shanghai (the task's first window) = 01:00 UTC on the 11th
    assert _tasks(db)["k1"].next_attempt_at == dt.datetime(2026, 3, 11, 1, 0, tzinfo=dt.UTC)
    relaxed = CallingRules.from_settings("08:00-20:00", [], max_calls_per_patient_per_day=4)
    later = dt.datetime(2026, 3, 11, 1, 30, tzinfo=dt.UTC)
    assert len(TaskClaimer(db, "d1", dt.timedelta(minutes=5), relaxed, TZ).claim(later, 5)) == 1


def test_patient_local_window_across_a_dst_change(db: Database) -> None:
    ny = "America/New_York"  # clocks go forward on 2026-03-08 at 02:00
    anytime = CallingRules.from_settings("00:00-24:00", [])
    before = dt.datetime(2026, 3, 7, 13, 30, tzinfo=dt.UTC)  # 08:30 EST: too early
    _seed(db, [{"timezone": ny}], [{"patient_id": 1, "timezone": ny,
                                    "calling_window": "09:00-11:30",
                                    "next_attempt_at": before}])
    claimer = TaskClaimer(db, "d1", dt.timedelta(minutes=5), anytime, TZ)
    assert claimer.claim(before, 5) == []
    assert _tasks(db)["k1"].next_attempt_at == dt.datetime(2026, 3, 7, 14, 0, tzinfo=dt.UTC)
    after = dt.datetime(2026, 3, 8, 13, 30, tzinfo=dt.UTC)  # same UTC time: 09:30 EDT
    assert [c.task_id for c in claimer.claim(after, 5)] == [1]
