"""The append-only, hash-chained audit log.

Each entry's hash is sha256 over the previous hash and the entry's canonical content, so a
changed or deleted row breaks the chain and `verify_chain` names the first broken id.
Appends lock the single `audit_head` row, which serialises writers on every backend.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.clock import Clock, ensure_utc
from core.store.models import AuditEntry, AuditHead

GENESIS = "0" * 64


def _entry_hash(prev_hash: str, at: dt.datetime, actor: str, action: str,
                object_type: str, object_id: str, detail: dict[str, Any]) -> str:
    body = json.dumps(
        [prev_hash, ensure_utc(at).isoformat(timespec="microseconds"), actor, action,
         object_type, object_id, detail],
        ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


class AuditLog:
    """Writes audit events inside the caller's transaction."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def append(self, session: Session, actor: str, action: str, object_type: str,
               object_id: str | int, detail: dict[str, Any] | None = None) -> AuditEntry:
        detail = dict(detail or {})
        head = session.execute(
            select(AuditHead).where(AuditHead.id == 1).with_for_update()
        ).scalar_one_or_none()
        if head is None:
            head = AuditHead(id=1, last_id=0, last_hash=GENESIS)
            session.add(head)
            session.flush()
        at = self._clock.now()
        digest = _entry_hash(head.last_hash, at, actor, action, object_type, str(object_id),
                             detail)
        entry = AuditEntry(at=at, actor=actor, action=action, object_type=object_type,
                           object_id=str(object_id), detail=detail, prev_hash=head.last_hash,
                           hash=digest)
        session.add(entry)
        session.flush()
        session.execute(update(AuditHead).where(AuditHead.id == 1)
                        .values(last_id=entry.id, last_hash=digest))
        return entry


@dataclass(frozen=True)
class ChainReport:
    entries: int
    ok: bool
    broken_at: int | None = None
    problem: str = ""


def verify_chain(session: Session) -> ChainReport:
    """Walk the whole chain; report the first row whose hash or link does not hold."""
    prev = GENESIS
    count = 0
    last_id = 0
    rows = session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()
    for row in rows:
        count += 1
        if row.prev_hash != prev:
            return ChainReport(count, False, row.id,
                               "link broken: a row before it was changed or deleted")
        expected = _entry_hash(prev, row.at, row.actor, row.action, row.object_type,
                               row.object_id, dict(row.detail))
        if expected != row.hash:
            return ChainReport(count, False, row.id, "content changed")
        prev = row.hash
        last_id = row.id
    head = session.get(AuditHead, 1)
    if head is not None and (head.last_hash != prev or head.last_id != last_id):
        return ChainReport(count, False, head.last_id,
                           "the newest entries were deleted (head does not match)")
    return ChainReport(count, True)
