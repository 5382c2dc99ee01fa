"""The HIS sync service the CLI (and the scheduler) call: settings -> source, mapping, run.

Everything here is composition: which source and mapping to use (options beat settings,
settings beat the shipped synthetic mapping) and the hospital's defaults. The sync itself is
`hisync.HisSync`; the quarantine and the run log are read with `hisync.reports`.

Raises ConfigError (no source configured), FileValidationError (bad mapping),
SourceError / SourceUnavailable, StoreUnavailable.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from core.errors import ConfigError
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
                        full=full, overlap=dt.timedelta(minutes=his.overlap_minutes)),
            LocaleDefaults(region=hospital.default_region, timezone=hospital.default_timezone,
                           language=hospital.default_language),
            progress=progress, source_id=his.source_id)
        return sync.run()
    finally:
        src.close()


def synthesize(out: Path, patients: int, seed: int, csv_dir: Path | None) -> Manifest:
    manifest = generate_his(out, patients=patients, seed=seed)
    if csv_dir is not None:
        export_csv(out, csv_dir)
    return manifest
