"""The store behaves the same on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError

from core.audit import AuditLog, verify_chain
from core.clock import FakeClock
from core.enums import EncounterType, Sex
from core.store.db import Database
from core.store.models import AuditEntry, Department, Encounter, Patient
from tests.audit_key import TEST_AUDIT_KEY


def _patient(his_id: str, now: dt.datetime) -> Patient:
    return Patient(his_id=his_id, mrn="M" + his_id, name="张三", sex=Sex.MALE,
                   birth_date=dt.date(1950, 5, 1), phone="+8613800138000", language="zh-CN",
                   timezone="Asia/Shanghai", content_hash="x", updated_at=now)


def test_migrate_twice_is_harmless(db: Database) -> None:
    db.migrate()
    with db.session() as s:
        assert s.execute(text("SELECT count(*) FROM patients")).scalar_one() == 0


def test_round_trip_keeps_types_and_utc(db: Database, clock: FakeClock) -> None:
    now = clock.now()
    with db.session() as s:
        dep = Department(code="CARD", name="心内科", name_en="Cardiology")
        s.add(dep)
        p = _patient("P1", now)
        s.add(p)
        s.flush()
        s.add(Encounter(his_id="E1", patient_id=p.id, type=EncounterType.INPATIENT,
                        department_id=dep.id, admit_at=now - dt.timedelta(days=5),
                        discharge_at=now, diagnoses=["I21.0", "E11"], procedures=[],
                        content_hash="y", updated_at=now))
    with db.session() as s:
        enc = s.execute(select(Encounter)).scalar_one()
        assert enc.type is EncounterType.INPATIENT
        assert enc.discharge_at == now and enc.discharge_at.tzinfo is not None
        assert enc.diagnoses == ["I21.0", "E11"]
        pat = s.execute(select(Patient)).scalar_one()
        assert pat.name == "张三" and pat.birth_date == dt.date(1950, 5, 1)


def test_his_id_is_unique(db: Database, clock: FakeClock) -> None:
    with db.session() as s:
        s.add(_patient("P1", clock.now()))
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(_patient("P1", clock.now()))


def test_naive_datetime_is_refused(db: Database) -> None:
    with pytest.raises(Exception, match="naive"), db.session() as s:
        s.add(_patient("P2", dt.datetime(2026, 1, 1)))


def test_audit_chain_detects_change_and_deletion(db: Database, clock: FakeClock) -> None:
    audit = AuditLog(clock, TEST_AUDIT_KEY)
    with db.session() as s:
        for i in range(5):
            clock.advance(dt.timedelta(seconds=1))
            audit.append(s, "nurse1", "recording.play", "recording", i, {"ip": "127.0.0.1"})
    with db.session() as s:
        assert verify_chain(s, TEST_AUDIT_KEY).ok
        assert verify_chain(s, TEST_AUDIT_KEY).entries == 5
    with db.session() as s:
        s.execute(update(AuditEntry).where(AuditEntry.id == 3).values(actor="mallory"))
    with db.session() as s:
        report = verify_chain(s, TEST_AUDIT_KEY)
        assert not report.ok and report.broken_at == 3
    with db.session() as s:
        s.execute(update(AuditEntry).where(AuditEntry.id == 3).values(actor="nurse1"))
        s.execute(text("DELETE FROM audit_log WHERE id = 2"))
    with db.session() as s:
        report = verify_chain(s, TEST_AUDIT_KEY)
        assert not report.ok and report.broken_at == 3


def test_audit_detects_deleted_tail(db: Database, clock: FakeClock) -> None:
    audit = AuditLog(clock, TEST_AUDIT_KEY)
    with db.session() as s:
        for i in range(3):
            audit.append(s, "sup", "login", "user", i)
    with db.session() as s:
        s.execute(text("DELETE FROM audit_log WHERE id = 3"))
    with db.session() as s:
        assert not verify_chain(s, TEST_AUDIT_KEY).ok


def test_migrations_match_the_models(db: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from core.store.models import Base

    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_one_live_attempt_per_patient(db: Database, clock: FakeClock) -> None:
    from core.enums import AttemptStatus, TaskStatus
    from core.store.models import CallAttempt, FollowupTask

    now = clock.now()
    with db.session() as s:
        dep = Department(code="CARD", name="心内科")
        p = _patient("P9", now)
        s.add_all([dep, p])
        s.flush()
        enc = Encounter(his_id="E9", patient_id=p.id, type=EncounterType.OUTPATIENT,
                        department_id=dep.id, admit_at=now, discharge_at=None,
                        content_hash="h", updated_at=now)
        s.add(enc)
        s.flush()
        tasks = [FollowupTask(plan_key=f"k{i}", patient_id=p.id, encounter_id=enc.id,
                              department_id=dep.id, rule_id="r", offset_days=i, script_id="s",
                              script_version=1, call_scripts=[], due_date=now.date(),
                              calling_window="09:00-18:00", timezone="Asia/Shanghai",
                              window_start=now, window_end=now, next_attempt_at=now,
                              created_at=now, updated_at=now) for i in (1, 2)]
        s.add_all(tasks)
        s.flush()
        ids = [t.id for t in tasks]
        pid, did = p.id, dep.id
    with db.session() as s:
        s.add(CallAttempt(task_id=ids[0], patient_id=pid, department_id=did, number=1,
                          status=AttemptStatus.DIALING, backend="sim", phone="+8613800138000",
                          created_at=now))
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(CallAttempt(task_id=ids[1], patient_id=pid, department_id=did, number=1,
                          status=AttemptStatus.IN_CALL, backend="sim", phone="+8613800138000",
                          created_at=now))
    with db.session() as s:
        s.execute(update(FollowupTask).where(FollowupTask.id == ids[0])
                  .values(status=TaskStatus.CLAIMED))
    with pytest.raises(IntegrityError), db.session() as s:
        s.execute(update(FollowupTask).where(FollowupTask.id == ids[1])
                  .values(status=TaskStatus.CLAIMED))
