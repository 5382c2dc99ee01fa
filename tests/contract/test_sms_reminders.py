"""Care reminders from the rules go into the SMS queue once per day, on every store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import insert, select

from core.enums import EncounterType, MessageBlock, MessagePurpose, MessageStatus, Sex
from core.sms import SmsPolicy
from core.store.db import Database
from core.store.models import Department, Encounter, Patient, SmsMessage
from followup_rules.loader import load_rule_set
from followup_rules.reminder_store import queue_due_reminders

REPO = Path(__file__).resolve().parents[2]
POLICY = SmsPolicy(window=SmsPolicy.parse_window("08:00-20:00"), daily_cap=3,
                   hospital={"zh-CN": "示范医院", "en": "Demo Hospital"})
DISCHARGED = dt.datetime(2026, 3, 1, 14, 30, tzinfo=dt.UTC)  # 22:30 in Shanghai


def _seed(db: Database) -> None:
    with db.session() as s:
        s.execute(insert(Department), [{"id": 1, "code": "CARD", "name": "心内科"}])
        s.execute(insert(Patient), [
            {"id": i, "his_id": f"P{i}", "mrn": f"M{i}", "name": f"病人{i}", "sex": Sex.MALE,
             "birth_date": dt.date(1950, 1, 1), "phone": f"+86138001380{i:02d}",
             "language": "zh-CN", "timezone": "Asia/Shanghai", "content_hash": "h",
             "updated_at": DISCHARGED, "plan_dirty": False, "opt_out_sms": i == 2}
            for i in (1, 2)])
        s.execute(insert(Encounter), [
            {"id": i, "his_id": f"E{i}", "patient_id": i, "type": EncounterType.INPATIENT,
             "department_id": 1, "admit_at": DISCHARGED - dt.timedelta(days=4),
             "discharge_at": DISCHARGED, "content_hash": "h", "updated_at": DISCHARGED,
             "plan_dirty": False, "diagnoses": ["I21.0"], "procedures": []}
            for i in (1, 2)])


def test_the_days_reminders_are_queued_once_and_expire_with_the_window(db: Database) -> None:
    _seed(db)
    rules = load_rule_set([REPO / "followup_rules" / "rules"], "09:00-20:00")
    day_2 = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)  # 10:00 on 03-02 in Shanghai
    assert queue_due_reminders(db, rules, POLICY, day_2) == 2
    assert queue_due_reminders(db, rules, POLICY, day_2 + dt.timedelta(hours=3)) == 0
    with db.session() as s:
        rows = list(s.execute(select(SmsMessage).order_by(SmsMessage.patient_id)).scalars())
    assert [(m.patient_id, m.purpose, m.template, m.status, m.block_reason) for m in rows] == [
        (1, MessagePurpose.REMINDER, "medication_reminder", MessageStatus.QUEUED, None),
        (2, MessagePurpose.REMINDER, "medication_reminder", MessageStatus.BLOCKED,
         MessageBlock.OPTED_OUT)]
    assert rows[0].expires_at == dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)  # 20:00 local
    assert rows[0].department_id == 1 and "用药" in rows[0].body
    assert queue_due_reminders(db, rules, POLICY, day_2 + dt.timedelta(days=1)) == 2
    assert queue_due_reminders(db, rules, POLICY, day_2 + dt.timedelta(days=30)) == 0
