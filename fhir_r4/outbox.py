"""The FHIR outbox: finished follow-ups queued as resources, delivered to the hospital's
FHIR server with retries, so nothing is lost while it is down.

`enqueue(session, resources, now)` adds resources not queued before (by type and id: a
resource is queued once). `deliver(session, client, now)` sends the due ones with PUT to
`<server>/<type>/<id>` (an update with the id we chose: sending again is harmless):
- 2xx: sent;
- 4xx (but 408 and 429): refused, with the server's OperationOutcome text kept: a person
  must look, sending the same again would get the same answer;
- 408, 429, 5xx, a connection that fails: left pending, tried again after a backoff that
  doubles from one minute to one hour.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import Session

from core.enums import OutboxStatus, TaskStatus
from core.store.models import FhirOutbox, FollowupTask

FIRST_BACKOFF = dt.timedelta(minutes=1)
MAX_BACKOFF = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Delivery:
    """What the server answered: its HTTP status (None: no answer at all) and, when it
    said no, why (its OperationOutcome's diagnostics or text, else the body's start)."""

    status: int | None
    detail: str = ""


class FhirServer(Protocol):
    def put(self, resource_type: str, resource_id: str, body: str) -> Delivery: ...


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    refused: int = 0


def unqueued_done_tasks() -> ColumnElement[bool]:
    """A filter for `FollowupTask`: done, and no resource of it queued yet."""
    return (FollowupTask.status == TaskStatus.DONE) & ~exists().where(
        FhirOutbox.task_id == FollowupTask.id)


def enqueue(session: Session, resources: Iterable[tuple[int | None, dict[str, Any]]],
            now: dt.datetime) -> int:
    """Queue (task id, resource) pairs not queued before; returns how many were added."""
    added = 0
    for task_id, resource in resources:
        key = (resource["resourceType"], resource["id"])
        queued = session.execute(select(FhirOutbox.id).where(
            FhirOutbox.resource_type == key[0], FhirOutbox.resource_id == key[1])).first()
        if queued is not None:
            continue
        session.add(FhirOutbox(task_id=task_id, resource_type=key[0], resource_id=key[1],
                               body=json.dumps(resource, ensure_ascii=False),
                               status=OutboxStatus.PENDING, attempts=0, next_try_at=now,
                               created_at=now))
        added += 1
    session.flush()
    return added


def _backoff(attempts: int) -> dt.timedelta:
    return min(MAX_BACKOFF, FIRST_BACKOFF * (1 << min(max(attempts - 1, 0), 10)))


def deliver(session: Session, server: FhirServer, now: dt.datetime, limit: int = 200
            ) -> DeliveryReport:
    """Send up to `limit` due resources, oldest first; each row's new state is written as
    it is known (the caller commits)."""
    report = DeliveryReport()
    due = session.execute(select(FhirOutbox).where(
        FhirOutbox.status == OutboxStatus.PENDING, FhirOutbox.next_try_at <= now)
        .order_by(FhirOutbox.next_try_at, FhirOutbox.id).limit(limit)).scalars().all()
    for row in due:
        answer = server.put(row.resource_type, row.resource_id, row.body)
        row.attempts += 1
        if answer.status is not None and 200 <= answer.status < 300:
            row.status, row.sent_at, row.last_error = OutboxStatus.SENT, now, None
            report.sent += 1
        elif answer.status is not None and 400 <= answer.status < 500 \
                and answer.status not in (408, 429):
            row.status = OutboxStatus.REFUSED
            row.last_error = f"HTTP {answer.status}: {answer.detail}"[:1024]
            report.refused += 1
        else:
            row.next_try_at = now + _backoff(row.attempts)
            row.last_error = (f"HTTP {answer.status}: " if answer.status else "") + \
                answer.detail[:1000]
            report.retried += 1
    session.flush()
    return report
