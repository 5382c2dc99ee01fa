"""Retention: purge recordings older than their department's period, except on legal hold.

A hold on a call's recording holds the whole call: its voice answers' clips stay too (the
hold is placed on the evidence of a call, and a clip filed later from the spool joins it).

Several rows may share one content-addressed file; the file goes only when no row that is
still kept points at it. Every purge is in the audit log (what, why).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.audit import AuditLog
from core.clock import Clock
from core.store.models import Department, Recording


@dataclass(frozen=True, slots=True)
class PurgeReport:
    purged: int
    files_removed: int
    held: int


def purge_expired(session: Session, store_root: Path, clock: Clock, audit: AuditLog,
                  default_days: int, actor: str = "system:retention") -> PurgeReport:
    """Purge what retention allows; returns counts. Runs inside the caller's transaction."""
    now = clock.now()
    days = func.coalesce(Department.retention_days, default_days)
    rows = session.execute(
        select(Recording, days)
        .outerjoin(Department, Department.id == Recording.department_id)
        .where(Recording.purged_at.is_(None))
    ).all()
    held_calls = set(session.execute(
        select(Recording.attempt_id).where(Recording.legal_hold.is_(True),
                                           Recording.attempt_id.is_not(None))).scalars())
    purged = held = removed = 0
    for rec, keep_days in rows:
        if rec.created_at > now - dt.timedelta(days=int(keep_days)):
            continue
        if rec.legal_hold or rec.attempt_id in held_calls:
            held += 1
            continue
        rec.purged_at = now
        purged += 1
        audit.append(session, actor, "recording.purge", "recording", rec.id,
                     {"sha256": rec.sha256, "created_at": rec.created_at.isoformat(),
                      "retention_days": int(keep_days)})
    session.flush()
    for rec, _ in rows:
        if rec.purged_at != now:
            continue
        still_used = session.execute(
            select(func.count()).select_from(Recording)
            .where(Recording.path == rec.path, Recording.purged_at.is_(None))
        ).scalar_one()
        path = store_root / rec.path
        if not still_used and path.exists():
            path.unlink()
            removed += 1
    return PurgeReport(purged=purged, files_removed=removed, held=held)

