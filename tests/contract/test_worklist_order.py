"""The worklist's order pins the one direction of ticket priority (`core.tickets`): the most
severe first, then the lower priority number, then the oldest. A low red flag lists before
an "asked for a person" of the same severity, never after it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert

from console.access import Principal
from console.ticket_lists import open_tickets
from core.enums import Role, Severity, TicketReason, TicketStatus
from core.store.db import Database
from core.store.models import Ticket
from core.tickets import response_due, ticket_priority
from tests.contract.test_claims import NOW, _seed


def test_the_worklist_lists_the_most_urgent_first(db: Database) -> None:
    _seed(db, [{}], [{"patient_id": 1}])
    rows = [
        (TicketReason.ATTEMPTS_EXHAUSTED, None, 0),
        (TicketReason.ASKED_FOR_PERSON, Severity.LOW, 1),
        (TicketReason.RED_FLAG, Severity.LOW, 2),
        (TicketReason.RED_FLAG, Severity.CRITICAL, 3),
        (TicketReason.IDENTITY_FAILED, Severity.LOW, 4),
        (TicketReason.RED_FLAG, Severity.HIGH, 5),
    ]
    with db.session() as s:
        s.execute(insert(Ticket), [
            {"patient_id": 1, "department_id": 1, "reason": reason, "severity": severity,
             "priority": ticket_priority(reason), "status": TicketStatus.OPEN,
             "summary": f"{reason.value}/{severity}", "created_at": NOW + dt.timedelta(
                 minutes=minute)} for reason, severity, minute in rows])
        who = Principal(1, "a", "A", Role.AGENT, frozenset({Role.AGENT}), {}, None)
        listed = [(t.reason, t.severity) for t in open_tickets(s, who)]
    assert listed == [
        ("red_flag", "critical"), ("red_flag", "high"), ("red_flag", "low"),
        ("asked_for_person", "low"), ("identity_failed", "low"), ("attempts_exhausted", ""),
    ]


def test_priority_and_response_time_point_one_way() -> None:
    assert ticket_priority(TicketReason.RED_FLAG) < ticket_priority(
        TicketReason.ASKED_FOR_PERSON) < ticket_priority(TicketReason.ATTEMPTS_EXHAUSTED)
    assert [Severity(s).rank for s in ("low", "medium", "high", "critical")] == [0, 1, 2, 3]
    due = [response_due(TicketReason.RED_FLAG, sev, NOW) for sev in
           (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW)]
    assert due == sorted(due) and due[0] == NOW + dt.timedelta(hours=1)
