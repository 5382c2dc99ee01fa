"""The do-not-call list: numbers never to be called, with why, who and until when.

An entry is in force while it is not removed and its expiry (if any) has not passed. The
dialer reads `blocked` for every claim batch (one query), so an entry added in the console
stops the next call to that number in every dialer process. Adding and removing are audited
in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from sqlalchemy import ColumnElement, Connection, and_, or_, select
from sqlalchemy.orm import Session

from core.audit import AuditLog
from core.enums import DncReason, DncSource
from core.store.models import DoNotCall


def in_force(now: dt.datetime) -> ColumnElement[bool]:
    """The entries that stop a call at `now`."""
    return and_(DoNotCall.removed_at.is_(None),
                or_(DoNotCall.expires_at.is_(None), DoNotCall.expires_at > now))


def blocked(conn: Connection | Session, phones: Collection[str],
            now: dt.datetime) -> dict[str, DncReason]:
    """The numbers among `phones` (E.164) on the list at `now`, each with its reason (a
    wrong number wins over a patient's request: it says the number is not theirs)."""
    if not phones:
        return {}
    out: dict[str, DncReason] = {}
    rows = conn.execute(select(DoNotCall.phone, DoNotCall.reason)
                        .where(DoNotCall.phone.in_(list(phones)), in_force(now)))
    for phone, reason in rows:
        if out.get(phone) is not DncReason.WRONG_NUMBER:
            out[phone] = reason
    return out


def add(session: Session, audit: AuditLog, *, phone: str, reason: DncReason,
        source: DncSource, actor: str, now: dt.datetime, note: str = "",
        patient_id: int | None = None, expires_at: dt.datetime | None = None) -> DoNotCall:
    """Put `phone` (E.164, already validated) on the list, audited. A number already on
    the list for the same reason is left as it is (and returned)."""
    existing = session.execute(select(DoNotCall).where(
        DoNotCall.phone == phone, DoNotCall.reason == reason, in_force(now))
    ).scalars().first()
    if existing is not None:
        return existing
    entry = DoNotCall(phone=phone, reason=reason, source=source, note=note,
                      patient_id=patient_id, expires_at=expires_at, added_by=actor,
                      added_at=now)
    session.add(entry)
    session.flush()
    audit.append(session, actor, "dnc.add", "do_not_call", entry.id,
                 {"reason": reason.value, "source": source.value, "patient_id": patient_id,
                  "expires_at": expires_at.isoformat() if expires_at else None})
    return entry
