"""Claims obey campaign holds (pauses) and the do-not-call list, on every store."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert, select

from core.audit import AuditLog
from core.campaign_holds import HoldTarget, holds_in_force, list_holds, pause, resume
from core.clock import FakeClock
from core.do_not_call import add
from core.enums import CancelReason, DncReason, DncSource, HoldScope, TaskStatus
from core.errors import InvalidRequest
from core.store.db import Database
from core.store.models import AuditEntry, Department, FollowupTask
from tests.audit_key import TEST_AUDIT_KEY
from tests.contract.test_claims import NOW, _claimer, _seed, _tasks


def _audit() -> AuditLog:
    return AuditLog(FakeClock(NOW), TEST_AUDIT_KEY)


def _two_departments(db: Database) -> None:
    """Four patients: 1 and 2 in CARD (1 asks script `s`, 2 asks `t`), 3 and 4 in ORTH."""
    with db.session() as s:
        s.execute(insert(Department), [{"id": 2, "code": "ORTH", "name": "骨科"}])
    _seed(db, [{}, {}, {}, {}], [
        {"patient_id": 1}, {"patient_id": 2, "script_id": "t", "call_scripts": ["t"]},
        {"patient_id": 3, "department_id": 2}, {"patient_id": 4, "department_id": 2,
                                                "call_scripts": ["s", "t"]}])


def _pause(db: Database, target: HoldTarget, reason: str = "staff meeting") -> str:
    with db.session() as s:
        return pause(s, _audit(), target, reason=reason, actor="sup1", now=NOW).message


def _resume(db: Database, target: HoldTarget) -> str:
    with db.session() as s:
        return resume(s, _audit(), target, actor="sup1", now=NOW).message


def test_a_department_pause_leaves_its_tasks_pending_and_the_others_go_on(
        db: Database) -> None:
    _two_departments(db)
    assert _pause(db, HoldTarget(HoldScope.DEPARTMENT, department_id=1)) == \
        "department CARD paused"
    claimer = _claimer(db)
    got = sorted(c.patient_id for c in claimer.claim(NOW, limit=10))
    assert got == [3, 4]
    assert claimer.holds and claimer.next_due() is None  # nothing else claimable is due
    t = _tasks(db)
    assert t["k1"].status is TaskStatus.PENDING and t["k2"].status is TaskStatus.PENDING
    assert _resume(db, HoldTarget(HoldScope.DEPARTMENT, department_id=1)) == \
        "department CARD resumed"
    assert sorted(c.patient_id for c in claimer.claim(NOW, limit=10)) == [1, 2]
    assert not claimer.holds


def test_a_script_pause_covers_calls_that_ask_it_among_others(db: Database) -> None:
    _two_departments(db)
    _pause(db, HoldTarget(HoldScope.SCRIPT, script_id="t"))
    # patient 2's call asks `t`; patient 4's merged call asks `s` then `t`
    assert sorted(c.patient_id for c in _claimer(db).claim(NOW, limit=10)) == [1, 3]


def test_pausing_everything_claims_nothing_and_says_when_nothing_is_due(
        db: Database) -> None:
    _two_departments(db)
    _pause(db, HoldTarget(HoldScope.ALL))
    claimer = _claimer(db)
    assert claimer.claim(NOW, limit=10) == [] and claimer.next_due() is None
    assert all(t.status is TaskStatus.PENDING for t in _tasks(db).values())


def test_pause_twice_and_resume_of_nothing_are_no_ops_with_a_message(db: Database) -> None:
    _two_departments(db)
    card = HoldTarget(HoldScope.DEPARTMENT, department_id=1)
    _pause(db, card)
    assert _pause(db, card, "again") == "department CARD is already paused"
    assert _resume(db, HoldTarget(HoldScope.ALL)) == "all calling is not paused"
    with db.session() as s:
        holds = list_holds(s)
        actions = s.execute(select(AuditEntry.action, AuditEntry.actor, AuditEntry.detail)
                            .where(AuditEntry.action.like("campaign.%"))).all()
    assert [(h.department_code, h.reason, h.held_by) for h in holds] == [
        ("CARD", "staff meeting", "sup1")]
    assert [(a, who, d["reason"]) for a, who, d in actions] == [
        ("campaign.pause", "sup1", "staff meeting")]


def test_a_pause_needs_a_reason_and_a_real_department(db: Database) -> None:
    _two_departments(db)
    with pytest.raises(InvalidRequest, match="reason"):
        _pause(db, HoldTarget(HoldScope.ALL), reason="  ")
    with pytest.raises(InvalidRequest, match="department"):
        _pause(db, HoldTarget(HoldScope.DEPARTMENT, department_id=99))
    with db.session() as s:
        assert not holds_in_force(s)


def test_numbers_on_the_do_not_call_list_cancel_their_tasks(db: Database) -> None:
    _seed(db, [{}, {}, {}, {}], [{"patient_id": i} for i in (1, 2, 3, 4)])
    with db.session() as s:
        phones = dict(s.execute(select(FollowupTask.patient_id, FollowupTask.id)).all())
        assert len(phones) == 4
        add(s, _audit(), phone="+8613800138001", reason=DncReason.PATIENT_REQUEST,
            source=DncSource.CONSOLE, actor="agent1", now=NOW)
        add(s, _audit(), phone="+8613800138002", reason=DncReason.WRONG_NUMBER,
            source=DncSource.TICKET, actor="agent1", now=NOW)
        expired = add(s, _audit(), phone="+8613800138003", reason=DncReason.OTHER,
                      source=DncSource.CLI, actor="cli:root", now=NOW - dt.timedelta(days=9),
                      expires_at=NOW - dt.timedelta(days=1))
        assert expired.id is not None
    got = [c.patient_id for c in _claimer(db).claim(NOW, limit=10)]
    t = _tasks(db)
    assert sorted(got) == [3, 4]
    assert (t["k1"].status, t["k1"].cancel_reason) == (TaskStatus.CANCELLED,
                                                       CancelReason.DO_NOT_CALL)
    assert (t["k2"].status, t["k2"].cancel_reason) == (TaskStatus.CANCELLED,
                                                       CancelReason.WRONG_NUMBER)
