"""The HIS sync service the CLI (and the scheduler) call: settings -> source, mapping, run.

Everything here is composition: which source and mapping to use (options beat settings,
settings beat the shipped synthetic mapping), the hospital's defaults, and the queries an
HIS administrator needs (the quarantine, the run log). The sync itself is `hisync.HisSync`.

Raises ConfigError (no source configured), FileValidationError (bad mapping),
SourceError / SourceUnavailable, StoreUnavailable.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from core.enums import RejectReason, SyncRunStatus
from core.errors import ConfigError
from core.store.models import HisReject, HisSyncRun
from engine.app import App
from hisync.mapping import DEFAULT_MAPPING, HisMapping, load_mapping
from hisync.sources import open_source
from hisync.sync import HisSync, LocaleDefaults, ProgressSink, SyncOptions, SyncReport
from hisync.synthetic import Manifest, export_csv, generate_his


def resolve_mapping(app: App, mapping: str | None) -> HisMapping:
    return load_mapping(mapping or app.settings.his.mapping or DEFAULT_MAPPING)


def run_sync(app: App, source: str | None = None, mapping: str | None = None,
             full: bool = False, progress: ProgressSink | None = None) -> SyncReport:
    """One sync run with the settings' batch size, retries and workers."""
    location = source or app.settings.his.source
    if not location:
        raise ConfigError("his.source", "no HIS source: set his.source or pass --source")
    his = app.settings.his
    hospital = app.settings.hospital
    parsed_mapping = resolve_mapping(app, mapping)
    src = open_source(location)
    try:
        sync = HisSync(
            app.db, src, parsed_mapping, app.clock,
            SyncOptions(batch_size=his.batch_size, retries=his.retries, workers=his.workers,
                        full=full),
            LocaleDefaults(region=hospital.default_region, timezone=hospital.default_timezone,
                           language=hospital.default_language),
            progress=progress)
        return sync.run()
    finally:
        src.close()


def synthesize(out: Path, patients: int, seed: int, csv_dir: Path | None) -> Manifest:
    manifest = generate_his(out, patients=patients, seed=seed)
    if csv_dir is not None:
        export_csv(out, csv_dir)
    return manifest


@dataclass(frozen=True)
class RejectView:
    id: int
    entity: str
    row_key: str
    field: str
    reason: RejectReason
    detail: str
    created_at: dt.datetime
    resolved: bool


def list_rejects(app: App, reason: RejectReason | None = None, limit: int = 50,
                 include_resolved: bool = False) -> tuple[list[RejectView], int]:
    """The newest quarantined rows (and how many match in all)."""
    cond = []
    if reason is not None:
        cond.append(HisReject.reason == reason)
    if not include_resolved:
        cond.append(HisReject.resolved_at.is_(None))
    with app.db.session() as s:
        total = s.execute(select(func.count()).select_from(HisReject).where(*cond)).scalar_one()
        rows = s.execute(select(HisReject).where(*cond).order_by(HisReject.id.desc())
                         .limit(limit)).scalars().all()
        return [RejectView(r.id, r.entity, r.row_key, r.field, r.reason, r.detail,
                           r.created_at, r.resolved_at is not None) for r in rows], int(total)


@dataclass(frozen=True)
class RunView:
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


def list_runs(app: App, limit: int = 20) -> list[RunView]:
    with app.db.session() as s:
        rows = s.execute(select(HisSyncRun).order_by(HisSyncRun.id.desc()).limit(limit))
        return [RunView(r.id, r.source, r.status, r.started_at, r.finished_at, r.rows_read,
                        r.inserted, r.updated, r.unchanged, r.rejected, r.error)
                for r in rows.scalars()]
