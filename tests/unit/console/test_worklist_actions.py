"""The worklist's service on each store: the dispositions that act on the patient (rows in
patients, followup_tasks, do_not_call, tickets and the audit log, read back with plain
queries), a callback the fake-clock dialer places at 15:00 and not at 14:59, release and
reassign by a supervisor, an agent refused, other departments' tickets not found, the
tabs, and the extension remembered."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from console.access import Permission, Principal, load_principal
from console.forms import Disposition, DispositionForm, FormError, ReassignForm
from console.i18n import translate
from console.ticket_lists import TicketQuery, TicketView, list_tickets
from console.worklist import WorklistService, saved_extension
from core.audit import AuditLog, verify_chain
from core.calling_window import CallingRules
from core.clock import FakeClock
from core.do_not_call import blocked
from core.enums import (
    CancelReason,
    DncReason,
    DncSource,
    TaskStatus,
    TicketReason,
    TicketStatus,
)
from core.errors import NotFound, PermissionDenied
from core.store.db import Database
from core.store.models import AuditEntry, DoNotCall, FollowupTask, Patient, Ticket, User
from core.tickets import response_due, ticket_priority
from dialer.claims import TaskClaimer
from tests.audit_key import TEST_AUDIT_KEY
from tests.unit.console.worklist_seed import TZ, WINDOW, Ward, seed_ward

HOURS = CallingRules.from_settings("09:00-20:00", [])
LOCAL = dt.timezone(dt.timedelta(hours=8))  # Asia/Shanghai keeps no summer time


@pytest.fixture
def ward(db: Database, clock: FakeClock) -> Ward:
    return seed_ward(db, clock.now())


@pytest.fixture
def svc(clock: FakeClock) -> WorklistService:
    return WorklistService(clock, AuditLog(clock, TEST_AUDIT_KEY), None, HOURS, TZ)


def who(db: Database, ward: Ward, name: str, now: dt.datetime) -> Principal:
    with db.session() as s:
        found = load_principal(s, ward.users[name], now)
    assert found is not None
    return found.acting_as(Permission.WORKLIST)


def close(db: Database, svc: WorklistService, ward: Ward, clock: FakeClock,
          disposition: Disposition, callback_at: dt.datetime | None = None,
          user: str = "agent_a", ticket: int | None = None) -> None:
    agent = who(db, ward, user, clock.now())
    with db.session() as s:
        svc.close(s, agent, ticket or ward.ticket, DispositionForm(disposition, "", callback_at))


def tasks_of(db: Database, patient_id: int) -> dict[int, FollowupTask]:
    with db.session() as s:
        return {t.id: t for t in s.execute(select(FollowupTask).where(
            FollowupTask.patient_id == patient_id)).scalars()}


def audit(db: Database, action: str) -> list[AuditEntry]:
    with db.session() as s:
        return list(s.execute(select(AuditEntry).where(AuditEntry.action == action)
                              .order_by(AuditEntry.id)).scalars())


def assert_cancelled_once(db: Database, ward: Ward, reason: CancelReason,
                          now: dt.datetime) -> list[int]:
    """Her pending calls are cancelled for `reason`; the call in progress, the failed
    call and the other patient's call are not touched. The ids cancelled."""
    tasks = tasks_of(db, ward.patient)
    cancelled = sorted(i for i, t in tasks.items() if t.status is TaskStatus.CANCELLED)
    assert cancelled == sorted(ward.pending)
    for i in cancelled:
        assert tasks[i].cancel_reason is reason
        assert tasks[i].closed_at == now and tasks[i].updated_at == now
    assert tasks[ward.claimed_task].status is TaskStatus.CLAIMED
    assert tasks[ward.claimed_task].lease_owner == "dialer-1"
    assert tasks[ward.failed_task].status is TaskStatus.FAILED
    assert tasks_of(db, ward.other_patient)[ward.other_task].status is TaskStatus.PENDING
    return cancelled


def assert_closed(db: Database, ward: Ward, disposition: Disposition) -> None:
    with db.session() as s:
        t = s.get(Ticket, ward.ticket)
        assert t is not None
        assert t.status is TicketStatus.CLOSED and t.disposition == disposition.value
    assert [e.detail for e in audit(db, "ticket.close")] == [
        {"disposition": disposition.value}]


def test_deceased_marks_the_patient_and_cancels_every_pending_call(
        db: Database, svc: WorklistService, ward: Ward, clock: FakeClock) -> None:
    close(db, svc, ward, clock, Disposition.DECEASED)
    with db.session() as s:
        patient = s.get(Patient, ward.patient)
        assert patient is not None and patient.deceased and not patient.opt_out_phone
        assert s.execute(select(DoNotCall)).scalars().all() == []
    cancelled = assert_cancelled_once(db, ward, CancelReason.DECEASED, clock.now())
    assert [(e.object_id, e.detail) for e in audit(db, "patient.deceased")] == [
        (str(ward.patient), {"ticket_id": ward.ticket, "cancelled_tasks": cancelled})]
    assert_closed(db, ward, Disposition.DECEASED)
    with db.session() as s:
        verify_chain(s, TEST_AUDIT_KEY)


def test_refused_opts_out_cancels_and_lists_the_number(
        db: Database, svc: WorklistService, ward: Ward, clock: FakeClock) -> None:
    close(db, svc, ward, clock, Disposition.REFUSED)
    with db.session() as s:
        patient = s.get(Patient, ward.patient)
        assert patient is not None and patient.opt_out_phone and not patient.deceased
        entries = s.execute(select(DoNotCall)).scalars().all()
    assert [(e.phone, e.reason, e.source, e.patient_id, e.added_by) for e in entries] == [
        (ward.phone, DncReason.PATIENT_REQUEST, DncSource.TICKET, ward.patient,
         "user:agent_a")]
    cancelled = assert_cancelled_once(db, ward, CancelReason.OPTED_OUT, clock.now())
    assert [e.detail for e in audit(db, "patient.opt_out")] == [
        {"ticket_id": ward.ticket, "cancelled_tasks": cancelled, "dnc_entry": entries[0].id}]
    assert len(audit(db, "dnc.add")) == 1
    assert_closed(db, ward, Disposition.REFUSED)


def test_wrong_number_lists_the_number_and_asks_for_the_his_to_correct_it(
        db: Database, svc: WorklistService, ward: Ward, clock: FakeClock) -> None:
    close(db, svc, ward, clock, Disposition.WRONG_NUMBER)
    now = clock.now()
    with db.session() as s:
        entries = s.execute(select(DoNotCall)).scalars().all()
        fix = s.execute(select(Ticket).where(Ticket.reason == TicketReason.INVALID_NUMBER)
                        ).scalars().all()
        patient = s.get(Patient, ward.patient)
        assert patient is not None and not patient.opt_out_phone and not patient.deceased
    assert [(e.phone, e.reason, e.source) for e in entries] == [
        (ward.phone, DncReason.WRONG_NUMBER, DncSource.TICKET)]
    cancelled = assert_cancelled_once(db, ward, CancelReason.WRONG_NUMBER, now)
    assert len(fix) == 1
    new = fix[0]
    assert (new.status, new.patient_id, new.department_id, new.priority, new.due_at,
            new.assigned_user_id) == (
        TicketStatus.OPEN, ward.patient, ward.card,
        ticket_priority(TicketReason.INVALID_NUMBER),
        response_due(TicketReason.INVALID_NUMBER, None, now), None)
    assert [e.detail for e in audit(db, "patient.wrong_number")] == [
        {"ticket_id": ward.ticket, "cancelled_tasks": cancelled, "dnc_entry": entries[0].id,
         "fix_ticket": new.id}]
    assert_closed(db, ward, Disposition.WRONG_NUMBER)
    # the number the HIS later sends instead is not on the list; the wrong one stays
    with db.session() as s:
        assert blocked(s, {ward.phone, "+8613900139000"}, now) == {
            ward.phone: DncReason.WRONG_NUMBER}


def test_a_callback_is_placed_by_the_fake_clock_dialer_at_15_00_not_before(
        db: Database, svc: WorklistService, ward: Ward, clock: FakeClock) -> None:
    """An agent schedules a callback for 15:00; the fake-clock dialer places it then."""
    at = dt.datetime(2026, 3, 10, 15, 0)  # local; the clock reads 09:00 local
    close(db, svc, ward, clock, Disposition.CALL_BACK, callback_at=at)
    utc = dt.datetime(2026, 3, 10, 7, 0, tzinfo=dt.UTC)
    task = tasks_of(db, ward.patient)[ward.failed_task]
    assert (task.status, task.next_attempt_at, task.callback_at, task.attempts,
            task.max_attempts, task.lease_owner, task.lease_expires_at, task.closed_at) == (
        TaskStatus.PENDING, utc, utc, 3, 4, None, None, None)
    assert [(e.object_id, e.detail) for e in audit(db, "task.callback")] == [
        (str(ward.failed_task), {"ticket_id": ward.ticket, "callback_at": utc.isoformat(),
                                 "max_attempts": 4})]
    assert_closed(db, ward, Disposition.CALL_BACK)
    with db.session() as s:  # the call that was in progress has ended meanwhile
        ended = s.get(FollowupTask, ward.claimed_task)
        assert ended is not None
        ended.status = TaskStatus.DONE
    dialer = TaskClaimer(db, "dialer-t", dt.timedelta(minutes=5), HOURS, TZ)
    clock.set(dt.datetime(2026, 3, 10, 14, 59, tzinfo=LOCAL))
    assert dialer.claim(clock.now(), 10) == []
    clock.set(dt.datetime(2026, 3, 10, 15, 0, tzinfo=LOCAL))
    assert [c.task_id for c in dialer.claim(clock.now(), 10)] == [ward.failed_task]


@pytest.mark.parametrize("local", [
    dt.datetime(2026, 3, 10, 12, 30),  # between the call's two spans
    dt.datetime(2026, 3, 10, 8, 30),  # before the window opens
    dt.datetime(2026, 3, 10, 18, 30),  # inside the hospital's hours, after the call's
    dt.datetime(2026, 3, 9, 15, 0),  # yesterday
])
def test_a_callback_outside_the_window_or_past_is_refused_showing_the_window(
        db: Database, svc: WorklistService, ward: Ward, clock: FakeClock,
        local: dt.datetime) -> None:
    with pytest.raises(FormError) as refused:
        close(db, svc, ward, clock, Disposition.CALL_BACK, callback_at=local)
    assert refused.value.field == "callback_at"
    assert WINDOW in refused.value.message
    assert WINDOW in translate("zh", "problem." + refused.value.problem, **refused.value.values)
    with db.session() as s:
        t = s.get(Ticket, ward.ticket)
        task = s.get(FollowupTask, ward.failed_task)
        assert t is not None and task is not None
        assert t.status is TicketStatus.CLAIMED and task.status is TaskStatus.FAILED
    assert audit(db, "ticket.close") == [] and audit(db, "task.callback") == []


def test_a_callback_needs_a_call_behind_the_ticket(
        db: Database, svc: WorklistService, ward: Ward, clock: FakeClock) -> None:
    with pytest.raises(FormError) as refused:
        close(db, svc, ward, clock, Disposition.CALL_BACK, user="agent_onc",
              callback_at=dt.datetime(2026, 3, 10, 15, 0), ticket=ward.onc_ticket)
    assert refused.value.problem == "no_call"


def test_the_hospitals_hours_narrow_the_window_shown(
        db: Database, clock: FakeClock, ward: Ward) -> None:
    narrow = WorklistService(clock, AuditLog(clock, TEST_AUDIT_KEY), None,
                             CallingRules.from_settings("10:00-17:00", []), TZ)
    with pytest.raises(FormError) as refused:
        close(db, narrow, ward, clock, Disposition.CALL_BACK,
              callback_at=dt.datetime(2026, 3, 10, 17, 30))
    assert refused.value.values == {"window": "10:00-12:00,14:00-17:00"}


def test_a_supervisor_reassigns_and_the_new_agent_has_it_under_my_tickets(
        db: Database, svc: WorklistService, ward: Ward, clock: FakeClock) -> None:
    now = clock.now()
    sup = who(db, ward, "sup_card", now)
    with db.session() as s:
        svc.reassign(s, sup, ward.ticket, ReassignForm(ward.users["agent_b"]))
    with db.session() as s:
        t = s.get(Ticket, ward.ticket)
        assert t is not None
        assert (t.status, t.assigned_user_id, t.claimed_at) == (
            TicketStatus.CLAIMED, ward.users["agent_b"], now)
        mine_b = list_tickets(s, who(db, ward, "agent_b", now),
                              TicketQuery.for_view(TicketView.MINE, who(db, ward, "agent_b", now)))
        mine_a = list_tickets(s, who(db, ward, "agent_a", now),
                              TicketQuery.for_view(TicketView.MINE, who(db, ward, "agent_a", now)))
    assert [(r.id, r.assignee_name) for r in mine_b] == [(ward.ticket, "李娜")]
    assert mine_a == []
    assert [(e.actor, e.object_id, e.detail) for e in audit(db, "ticket.reassign")] == [
        ("user:sup_card", str(ward.ticket), {"from_user": "agent_a", "to_user": "agent_b"})]
    # the supervisor gives it back to the team, and hands the open one out again
    with db.session() as s:
        svc.release(s, sup, ward.ticket)
    with db.session() as s:
        t = s.get(Ticket, ward.ticket)
        assert t is not None and (t.status, t.assigned_user_id) == (TicketStatus.OPEN, None)
        svc.reassign(s, sup, ward.ticket, ReassignForm(ward.users["agent_a"]))
    assert [e.detail for e in audit(db, "ticket.release")] == [{"from_user": "agent_b"}]
    assert audit(db, "ticket.reassign")[-1].detail == {"from_user": None, "to_user": "agent_a"}


@pytest.mark.parametrize("target", ["agent_onc", "mgr_card", "gone"])
def test_only_an_active_user_working_the_department_can_take_a_ticket(
        db: Database, svc: WorklistService, ward: Ward, clock: FakeClock, target: str) -> None:
    sup = who(db, ward, "sup_card", clock.now())
    with db.session() as s, pytest.raises(FormError) as refused:
        svc.reassign(s, sup, ward.ticket, ReassignForm(ward.users[target]))
    assert refused.value.problem == "not_eligible"
    assert audit(db, "ticket.reassign") == []


def test_an_agent_cannot_release_or_reassign_someone_elses_ticket(
        db: Database, svc: WorklistService, ward: Ward, clock: FakeClock) -> None:
    agent_b = who(db, ward, "agent_b", clock.now())
    with db.session() as s, pytest.raises(PermissionDenied):
        svc.reassign(s, agent_b, ward.ticket, ReassignForm(ward.users["agent_b"]))
    with db.session() as s, pytest.raises(PermissionDenied):
        svc.release(s, agent_b, ward.ticket)
    with db.session() as s, pytest.raises(PermissionDenied):
        svc.reassign(s, agent_b, ward.open_ticket, ReassignForm(ward.users["agent_b"]))
    with db.session() as s:
        t = s.get(Ticket, ward.ticket)
        assert t is not None and t.assigned_user_id == ward.users["agent_a"]
    assert audit(db, "ticket.reassign") == [] and audit(db, "ticket.release") == []
    # their own claim they may give back
    with db.session() as s:
        svc.release(s, who(db, ward, "agent_a", clock.now()), ward.ticket)
    assert [e.actor for e in audit(db, "ticket.release")] == ["user:agent_a"]


def test_another_departments_ticket_is_not_found(
        db: Database, svc: WorklistService, ward: Ward, clock: FakeClock) -> None:
    now = clock.now()

    def acts(p: Principal) -> list[Callable[[Session], None]]:
        return [lambda s: svc.release(s, p, ward.onc_ticket),
                lambda s: svc.reassign(s, p, ward.onc_ticket,
                                       ReassignForm(ward.users["agent_a"])),
                lambda s: svc.claim(s, p, ward.onc_ticket),
                lambda s: svc.close(s, p, ward.onc_ticket,
                                    DispositionForm(Disposition.DECEASED, ""))]

    for name in ("sup_card", "agent_a"):
        for act in acts(who(db, ward, name, now)):
            with db.session() as s, pytest.raises(NotFound):
                act(s)
    with db.session() as s:
        assert s.get(Patient, ward.onc_patient).deceased is False  # type: ignore[union-attr]


def test_tabs_age_overdue_and_the_searchable_history(
        db: Database, svc: WorklistService, ward: Ward, clock: FakeClock) -> None:
    now = clock.now()
    sup = who(db, ward, "sup_card", now)
    with db.session() as s:
        team = list_tickets(s, sup, TicketQuery.for_view(TicketView.TEAM, sup))
    assert {r.id for r in team} == {ward.ticket, ward.open_ticket}  # not oncology's
    row = next(r for r in team if r.id == ward.ticket)
    assert row.age(now) == (5, "h") and not row.overdue(now)
    assert row.overdue(now + dt.timedelta(hours=68))
    close(db, svc, ward, clock, Disposition.REACHED_WELL)
    clock.advance(dt.timedelta(days=2))

    def closed(q: str = "", days: tuple[dt.date | None, dt.date | None] = (None, None)
               ) -> list[int]:
        with db.session() as s:
            return [r.id for r in list_tickets(s, sup, TicketQuery.for_view(
                TicketView.CLOSED, sup, q=q, days=days, timezone=TZ))]

    assert closed() == [ward.ticket]
    assert closed("王芳") == closed("MRN-P1") == closed("138 0013 8000") == [ward.ticket]
    assert closed("陈静") == []
    day = dt.date(2026, 3, 10)  # closed at 09:00 local that day
    assert closed(days=(day, day)) == [ward.ticket]
    assert closed(days=(day + dt.timedelta(days=1), None)) == []
    assert closed(days=(None, day - dt.timedelta(days=1))) == []


def test_the_extension_is_remembered(
        db: Database, svc: WorklistService, ward: Ward, clock: FakeClock) -> None:
    agent = who(db, ward, "agent_a", clock.now())
    with db.session() as s:
        assert saved_extension(s, agent) == ""
        assert svc.request_call(s, agent, ward.ticket, "2001") == ward.phone
    with db.session() as s:
        assert saved_extension(s, agent) == "2001"
        assert s.get(User, ward.users["agent_a"]).extension == "2001"  # type: ignore[union-attr]
