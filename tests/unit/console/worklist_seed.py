"""A small ward for the worklist's tests: cardiology and oncology, a supervisor and two
agents in cardiology, an agent in oncology, a department manager and a former agent;
one cardiology patient (王芳) with two pending calls, one call a dialer has claimed and
the failed call behind her ticket; a second cardiology patient with a pending call; and an
oncology patient with a ticket. Every call's window is 09:00-12:00,14:00-18:00 (Shanghai).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from console.passwords import hash_password
from core.enums import EncounterType, Role, Sex, TaskStatus, TicketReason, TicketStatus
from core.store.db import Database
from core.store.models import Department, Encounter, FollowupTask, Patient, Ticket, User

PASSWORD = "correct-horse-battery"
WINDOW = "09:00-12:00,14:00-18:00"
TZ = "Asia/Shanghai"
USERS = {
    "sup_card": ("护士长", Role.SUPERVISOR, "CARD", True),
    "agent_a": ("张敏", Role.AGENT, "CARD", True),
    "agent_b": ("李娜", Role.AGENT, "CARD", True),
    "agent_onc": ("赵雷", Role.AGENT, "ONC", True),
    "mgr_card": ("王主任", Role.DEPT_MANAGER, "CARD", True),
    "gone": ("离职坐席", Role.AGENT, "CARD", False),
}


@dataclass
class Ward:
    card: int = 0
    onc: int = 0
    users: dict[str, int] = field(default_factory=dict)
    patient: int = 0  # 王芳: her ticket, claimed by agent_a
    other_patient: int = 0
    onc_patient: int = 0
    pending: list[int] = field(default_factory=list)  # 王芳's pending calls
    claimed_task: int = 0  # 王芳's call in progress in a dialer
    failed_task: int = 0  # the call behind her ticket (attempts used up)
    other_task: int = 0
    ticket: int = 0  # 王芳's, claimed by agent_a
    open_ticket: int = 0  # the other cardiology patient's, open
    onc_ticket: int = 0
    phone: str = "+8613800138000"


def seed_ward(db: Database, now: dt.datetime) -> Ward:
    """Fill a migrated store; `now` is when the tickets were raised."""
    w = Ward()
    pw = hash_password(PASSWORD)
    with db.session() as s:
        card = Department(code="CARD", name="心内科", name_en="Cardiology")
        onc = Department(code="ONC", name="肿瘤科", name_en="Oncology")
        s.add_all([card, onc])
        s.flush()
        w.card, w.onc = card.id, onc.id
        for name, (display, role, dept, active) in USERS.items():
            user = User(username=name, display_name=display, password_hash=pw, role=role,
                        department_id=card.id if dept == "CARD" else onc.id, active=active,
                        created_at=now)
            s.add(user)
            s.flush()
            w.users[name] = user.id

        def patient(his: str, name: str, phone: str) -> int:
            p = Patient(his_id=his, mrn=f"MRN-{his}", name=name, sex=Sex.FEMALE,
                        birth_date=dt.date(1950, 1, 1), phone=phone, language="zh-CN",
                        timezone=TZ, content_hash="x", updated_at=now, plan_dirty=False)
            s.add(p)
            s.flush()
            return p.id

        def task(patient_id: int, dept: int, key: str, status: TaskStatus,
                 attempts: int = 0) -> int:
            e = Encounter(his_id=f"E-{key}", patient_id=patient_id, type=EncounterType.INPATIENT,
                          department_id=dept, discharge_at=now - dt.timedelta(days=3),
                          diagnoses=[], procedures=[], content_hash="y", updated_at=now,
                          plan_dirty=False)
            s.add(e)
            s.flush()
            t = FollowupTask(plan_key=key, patient_id=patient_id, encounter_id=e.id,
                             department_id=dept, rule_id="r", offset_days=3,
                             script_id="cardiology-post-discharge", script_version=1,
                             call_scripts=["cardiology-post-discharge"], due_date=now.date(),
                             calling_window=WINDOW, timezone=TZ, window_start=now,
                             window_end=now + dt.timedelta(hours=9), status=status,
                             attempts=attempts, max_attempts=3,
                             next_attempt_at=now + dt.timedelta(days=7),
                             lease_owner="dialer-1" if status is TaskStatus.CLAIMED else None,
                             lease_expires_at=now + dt.timedelta(minutes=5)
                             if status is TaskStatus.CLAIMED else None,
                             closed_at=now if status is TaskStatus.FAILED else None,
                             created_at=now, updated_at=now)
            s.add(t)
            s.flush()
            return t.id

        def ticket(patient_id: int, dept: int, task_id: int | None, status: TicketStatus,
                   user: str | None) -> int:
            t = Ticket(task_id=task_id, patient_id=patient_id, department_id=dept,
                       reason=TicketReason.ATTEMPTS_EXHAUSTED, priority=50, status=status,
                       summary="多次未接通", created_at=now - dt.timedelta(hours=5),
                       due_at=now + dt.timedelta(hours=67),
                       assigned_user_id=w.users[user] if user else None,
                       claimed_at=now if user else None)
            s.add(t)
            s.flush()
            return t.id

        w.patient = patient("P1", "王芳", w.phone)
        w.pending = [task(w.patient, card.id, "p1-7", TaskStatus.PENDING),
                     task(w.patient, card.id, "p1-30", TaskStatus.PENDING)]
        w.claimed_task = task(w.patient, card.id, "p1-sat", TaskStatus.CLAIMED)
        w.failed_task = task(w.patient, card.id, "p1-3", TaskStatus.FAILED, attempts=3)
        w.ticket = ticket(w.patient, card.id, w.failed_task, TicketStatus.CLAIMED, "agent_a")
        w.other_patient = patient("P2", "陈静", "+8613800138001")
        w.other_task = task(w.other_patient, card.id, "p2-7", TaskStatus.PENDING)
        w.open_ticket = ticket(w.other_patient, card.id, w.other_task, TicketStatus.OPEN, None)
        w.onc_patient = patient("P3", "刘洋", "+8613800138002")
        w.onc_ticket = ticket(w.onc_patient, onc.id, None, TicketStatus.CLAIMED, "agent_onc")
    return w
