"""Writing the care reminders due today into the SMS queue (`core.sms`).

Looks at the encounters whose anchor is recent enough for a reminder to be due
(`reach_days`), asks the pure `due_reminders` per patient, and queues each due reminder
once: its key (encounter, rule, template, day) is unique on `sms_messages.plan_key`. A
reminder not sent by the end of that day's sending window expires (a medication reminder
for yesterday is no use). The queue blocks what must not go (opted out, deceased, no mobile
number).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, or_, select

from core.calling_window import zone
from core.sms import SmsPolicy, queue, window_close
from core.sms_templates import TEMPLATES
from core.store.db import Database
from core.store.models import Encounter, Patient, SmsMessage
from followup_rules.model import RuleSet
from followup_rules.reminders import due_reminders, reach_days
from followup_rules.work_loader import load_departments, load_work

_CHUNK = 500


def queue_due_reminders(db: Database, rules: RuleSet, policy: SmsPolicy,
                        now: dt.datetime) -> int:
    """Queue the reminders due today (each patient's local today); returns how many new
    messages were written (queued or blocked)."""
    reach = reach_days(rules)
    if reach == 0:
        return 0
    since = now - dt.timedelta(days=reach + 1)
    written = 0
    with db.session() as session:
        conn = session.connection()
        ids = sorted(set(session.execute(select(Encounter.patient_id).where(or_(
            Encounter.discharge_at >= since,
            and_(Encounter.discharge_at.is_(None), Encounter.admit_at >= since))
        )).scalars()))
        departments = load_departments(conn)
        for start in range(0, len(ids), _CHUNK):
            works = load_work(conn, ids[start:start + _CHUNK], departments)
            due = [(work, reminder) for work in works
                   for reminder in due_reminders(
                       rules, work.patient, work.encounters,
                       now.astimezone(zone(work.patient.timezone)).date())]
            if not due:
                continue
            keys = [reminder.key for _, reminder in due]
            done = set(session.execute(select(SmsMessage.plan_key).where(
                SmsMessage.plan_key.in_(keys))).scalars())
            patients = {p.id: p for p in session.execute(select(Patient).where(
                Patient.id.in_({w.patient.patient_id for w, _ in due}))).scalars()}
            for work, reminder in due:
                if reminder.key in done:
                    continue
                done.add(reminder.key)
                patient = patients[work.patient.patient_id]
                queue(session, policy, patient=patient, template=TEMPLATES[reminder.template],
                      values={}, now=now,
                      department_id=work.departments[reminder.encounter_id],
                      plan_key=reminder.key,
                      expires_at=window_close(reminder.day, patient.timezone, policy.window))
                written += 1
    return written
