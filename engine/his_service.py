"""The HIS sync service the CLI (and the scheduler) call: settings -> source, mapping, run.

Everything here is composition: which source and mapping to use (options beat settings,
settings beat the shipped synthetic mapping) and the hospital's defaults. The sync itself is
`hisync.HisSync`; the quarantine and the run log are read with `hisync.reports`.

Raises ConfigError (no source configured), FileValidationError (bad mapping),
SourceError / SourceUnavailable, StoreUnavailable.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from pathlib import Path

from core.errors import ConfigError
from engine.app import App
from hisync.fhir_rows import fhir_mapping
from hisync.fhir_source import FhirSource
from hisync.hl7_apply import AdtApplier
from hisync.mapping import DEFAULT_MAPPING, HisMapping, load_mapping
from hisync.mllp import MllpListener
from hisync.sources import Source, open_source
from hisync.store_writer import Counts
from hisync.sync import HisSync, LocaleDefaults, ProgressSink, SyncOptions, SyncReport
from hisync.synthetic import Manifest, export_csv, generate_his

FHIR_PREFIX = "fhir:"  # his.source = fhir:https://fhir.hospital/fhir


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
    src: Source
    if location.startswith(FHIR_PREFIX):  # a FHIR R4 server: Patient and Encounter
        fhir = app.settings.fhir
        src = FhirSource(location[len(FHIR_PREFIX):], fhir.patient_system,
                         fhir.encounter_system, fhir.timeout_s)
        parsed_mapping = fhir_mapping(parsed_mapping)
    else:
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


async def serve_hl7(app: App, host: str | None, port: int | None, stop: asyncio.Event,
                    ready: Callable[[int], None]) -> Counts:
    """The HL7 ADT feed until `stop`: MLLP on the his.hl7_* settings (options beat them);
    `ready(port)` once listening. Returns what the feed applied and quarantined."""
    his = app.settings.his
    hospital = app.settings.hospital
    applier = AdtApplier(app.db, resolve_mapping(app, None), f"hl7:{his.source_id or 'adt'}",
                         region=hospital.default_region, timezone=hospital.default_timezone,
                         language=hospital.default_language, max_bytes=his.hl7_max_bytes)
    await app.db.call(applier.open, app.clock.now())

    async def handle(frame: bytes) -> bytes:
        return (await app.db.call(applier.apply, frame, app.clock.now())).ack

    async def truncated(frame: bytes) -> None:
        await app.db.call(applier.keep_truncated, frame, app.clock.now())

    listener = MllpListener(handle, truncated)
    error: str | None = None
    try:
        ready(await listener.start(host or his.hl7_host,
                                   his.hl7_port if port is None else port))
        await stop.wait()
    except OSError as exc:
        error = f"cannot listen on {host or his.hl7_host}:{port or his.hl7_port}: {exc.strerror}"
        raise ConfigError("his.hl7_port", error) from None
    finally:
        await listener.close()
        await app.db.call(applier.close, app.clock.now(), error)
    return applier.counts


def synthesize(out: Path, patients: int, seed: int, csv_dir: Path | None) -> Manifest:
    manifest = generate_his(out, patients=patients, seed=seed)
    if csv_dir is not None:
        export_csv(out, csv_dir)
    return manifest
