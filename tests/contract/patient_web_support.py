"""A seeded store with one follow-up task and its web link, and the questionnaire app
over it (the repository's own scripts; cardiology-post-discharge v1 in zh-CN)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from core.audit import AuditLog
from core.clock import FakeClock
from core.enums import EncounterType, Sex, TaskStatus
from core.store.db import Database
from core.store.models import Department, Encounter, FollowupTask, Patient
from core.web_links import issue
from ivr.script_library import ScriptLibrary
from ivr.script_loader import load_scripts
from patient_web.app import create_app
from patient_web.deps import PatientWebDeps
from patient_web.questionnaire import HospitalFacts, Questionnaire
from tests.audit_key import TEST_AUDIT_KEY

REPO = Path(__file__).resolve().parents[2]
KEY = b"patient-web-test-key-0123456789-abcdef"
TZ = "Asia/Shanghai"
BORN = 1958
NAME = "王秀英"
HOSPITAL = HospitalFacts(name="示范医院", name_en="Demo Hospital", language="zh-CN",
                         emergency_number="120")
_LIBRARY: ScriptLibrary | None = None


def library() -> ScriptLibrary:
    global _LIBRARY
    if _LIBRARY is None:
        _LIBRARY = ScriptLibrary(load_scripts(REPO / "scripts"), "zh-CN")
    return _LIBRARY


@dataclass
class Seeded:
    token: str
    link_id: int
    task_id: int
    patient_id: int


def seed(db: Database, clock: FakeClock, *, patients: int = 1, status: TaskStatus =
         TaskStatus.FAILED, valid_for: dt.timedelta = dt.timedelta(days=3),
         language: str = "zh-CN", script: tuple[str, int] = ("cardiology-post-discharge", 1),
         ) -> list[Seeded]:
    """`patients` patients, each with one task and one link (cardiology, department 1)."""
    now = clock.now()
    out: list[Seeded] = []
    with db.session() as s:
        s.execute(insert(Department), [{"id": 1, "code": "CARD", "name": "心内科",
                                        "name_en": "Cardiology"}])
        for i in range(1, patients + 1):
            s.execute(insert(Patient), [{
                "id": i, "his_id": f"P{i}", "mrn": f"M{i}", "name": NAME if i == 1 else f"病人{i}",
                "sex": Sex.FEMALE, "birth_date": dt.date(BORN, 5, 17),
                "phone": f"+86138{i:08d}", "language": language, "timezone": TZ,
                "content_hash": "h", "updated_at": now, "plan_dirty": False}])
            s.execute(insert(Encounter), [{
                "id": i, "his_id": f"E{i}", "patient_id": i, "type": EncounterType.INPATIENT,
                "department_id": 1, "admit_at": now - dt.timedelta(days=9),
                "discharge_at": now - dt.timedelta(days=3), "content_hash": "h",
                "updated_at": now, "plan_dirty": False, "diagnoses": [], "procedures": []}])
            task: dict[str, Any] = {
                "id": i, "plan_key": f"k{i}", "patient_id": i, "encounter_id": i,
                "department_id": 1, "rule_id": "r", "offset_days": 3, "script_id": script[0],
                "script_version": script[1], "call_scripts": [script[0]],
                "due_date": now.date(), "calling_window": "09:00-20:00", "timezone": TZ,
                "window_start": now, "window_end": now, "priority": 50, "status": status,
                "attempts": 3, "max_attempts": 3, "next_attempt_at": now, "created_at": now,
                "updated_at": now}
            s.execute(insert(FollowupTask), [task])
            link, token = issue(s, key=KEY, patient_id=i, task_id=i, now=now,
                                valid_for=valid_for)
            out.append(Seeded(token, link.id, i, i))
    return out


def build(db: Database, clock: FakeClock, *, per_minute: int = 10_000,
          rate_clock: Any = None) -> tuple[Any, AuditLog]:
    audit = AuditLog(clock, TEST_AUDIT_KEY)
    q = Questionnaire(db, clock, audit, library(), HOSPITAL, KEY, max_failures=3)
    deps = PatientWebDeps(questionnaire=q, library=library(), key=KEY, hospital=HOSPITAL.name,
                          hospital_en=HOSPITAL.name_en, requests_per_minute=per_minute)
    if rate_clock is not None:
        deps.rate_clock = rate_clock
    return create_app(deps), audit
