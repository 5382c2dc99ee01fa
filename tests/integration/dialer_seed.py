"""Seed a store with patients and due follow-up tasks for the dialer's end-to-end tests."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, insert, select

from core.enums import EncounterType, Sex, TaskStatus
from core.store.db import Database
from core.store.models import CallAttempt, Department, Encounter, FollowupTask, Patient

SCRIPTS = [("cardiology-post-discharge", 1), ("inpatient-satisfaction", 1)]

# Fast, deterministic simulations: a tone per prompt, no speech model to load.
FAST_ENV = {
    "FOLLOWUP_TTS__ENGINE": '{"zh-CN": "tone", "en-US": "tone", "ko-KR": "tone"}',
    "FOLLOWUP_SPEECH__MODELS": "{}",
    "FOLLOWUP_HOSPITAL__CALLING_HOURS": "00:00-24:00",
    "FOLLOWUP_DIALER__MAX_CHANNELS": "8",
    "FOLLOWUP_DIALER__CALLS_PER_SECOND": "20",
}


DEPARTMENTS = [{"id": 1, "code": "CARD", "name": "心内科", "name_en": "Cardiology"},
               {"id": 2, "code": "ORTH", "name": "骨科", "name_en": "Orthopaedics"}]


def seed_due_tasks(db: Database, n: int, now: dt.datetime, start_id: int = 1,
                   departments: int = 1) -> None:
    """`n` patients, each with one discharge and one task due now (any hour); with
    `departments` 2, every other one is in orthopaedics rather than cardiology."""
    with db.session() as s:
        if start_id == 1:
            s.execute(insert(Department), DEPARTMENTS[:departments])
        ids = range(start_id, start_id + n)
        s.execute(insert(Patient), [
            {"id": i, "his_id": f"P{i}", "mrn": f"M{i}", "name": f"测试{i}",
             "sex": Sex.MALE if i % 2 else Sex.FEMALE, "birth_date": dt.date(1950 + i % 40, 5, 1),
             "phone": f"+86138{i:08d}", "language": "zh-CN", "timezone": "Asia/Shanghai",
             "content_hash": "h", "updated_at": now, "plan_dirty": False} for i in ids])
        s.execute(insert(Encounter), [
            {"id": i, "his_id": f"E{i}", "patient_id": i, "type": EncounterType.INPATIENT,
             "department_id": 1 + i % departments, "admit_at": now - dt.timedelta(days=6),
             "discharge_at": now - dt.timedelta(days=3), "diagnoses": ["I21.0"],
             "procedures": [], "content_hash": "h", "updated_at": now, "plan_dirty": False}
            for i in ids])
        s.execute(insert(FollowupTask), [
            {"id": i, "plan_key": f"{i}:test:3", "patient_id": i, "encounter_id": i,
             "department_id": 1 + i % departments, "rule_id": "test", "offset_days": 3,
             "script_id": SCRIPTS[i % 2][0], "script_version": SCRIPTS[i % 2][1],
             "call_scripts": [SCRIPTS[i % 2][0]], "due_date": now.date(),
             "calling_window": "00:00-24:00", "timezone": "Asia/Shanghai",
             "window_start": now, "window_end": now + dt.timedelta(days=1), "priority": 50,
             "status": TaskStatus.PENDING, "attempts": 0, "max_attempts": 3,
             "next_attempt_at": now - dt.timedelta(minutes=1), "created_at": now,
             "updated_at": now} for i in ids])


def attempts_by_department(db: Database) -> dict[int, int]:
    """Call attempts per department id, by a plain count of the rows."""
    with db.session() as s:
        return {dept: n for dept, n in s.execute(
            select(CallAttempt.department_id, func.count()).group_by(CallAttempt.department_id))}
