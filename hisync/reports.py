"""What an HIS administrator reads back: the quarantine of rejected rows and the run log.

Plain store queries returning frozen views; the CLI (`followup his rejects` / `his runs`)
renders them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select

from core.enums import RejectReason, SyncRunStatus
from core.store.db import Database
from core.store.models import HisReject, HisSyncRun


@dataclass(frozen=True)
class RejectView:
    """One quarantined HIS row: which row, which field, why."""

    id: int
    entity: str
    row_key: str
    field: str
    reason: RejectReason
    detail: str
    created_at: dt.datetime
    resolved: bool


def list_rejects(db: Database, reason: RejectReason | None = None, limit: int = 50,
                 include_resolved: bool = False) -> tuple[list[RejectView], int]:
    """The newest quarantined rows (and how many match in all)."""
    cond = []
    if reason is not None:
        cond.append(HisReject.reason == reason)
    if not include_resolved:
        cond.append(HisReject.resolved_at.is_(None))
    with db.session() as s:
        total = s.execute(select(func.count()).select_from(HisReject).where(*cond)).scalar_one()
        rows = s.execute(select(HisReject).where(*cond).order_by(HisReject.id.desc())
                         .limit(limit)).scalars().all()
        return [RejectView(r.id, r.entity, r.row_key, r.field, r.reason, r.detail,
                           r.created_at, r.resolved_at is not None) for r in rows], int(total)


@dataclass(frozen=True)
class RunView:
    """One sync run of the run log, with its row counts."""

    id: int
    source: str
    status: SyncRunStatus
    started_at: dt.datetime
    finished_at: dt.datetime | None
    rows_read: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    error: str | None


def list_runs(db: Database, limit: int = 20) -> list[RunView]:
    """The newest sync runs, newest first."""
    with db.session() as s:
        rows = s.execute(select(HisSyncRun).order_by(HisSyncRun.id.desc()).limit(limit))
        return [RunView(r.id, r.source, r.status, r.started_at, r.finished_at, r.rows_read,
                        r.inserted, r.updated, r.unchanged, r.rejected, r.error)
                for r in rows.scalars()]
