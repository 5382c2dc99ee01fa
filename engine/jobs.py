"""The daemon's scheduled jobs, each one service call (run in a worker thread)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from engine.app import App
from engine.daemon import DaemonJobs, Service

log = logging.getLogger(__name__)


def daemon_jobs(app: App) -> DaemonJobs:
    def sync_and_plan() -> dict[str, Any]:
        from engine import his_service
        from engine.planning import planning_service, queue_reminders

        out: dict[str, Any] = {}
        if app.settings.his.source:
            report = his_service.run_sync(app)
            out["his"] = {"status": report.status.value, "read": report.totals.read,
                          "rejected": report.totals.rejected}
        counts = planning_service(app).run()
        out["plan"] = str(counts)
        out["reminders"] = queue_reminders(app)
        return out

    def retention() -> dict[str, int]:
        from engine.dialing import recording_store
        from recordings.retention import purge_expired

        store = recording_store(app)
        with app.db.session() as session:
            report = purge_expired(session, store.root, app.clock, app.audit,
                                   app.settings.recordings.retention_days)
        return {"purged": report.purged, "files_removed": report.files_removed,
                "held": report.held}

    def report_snapshots() -> dict[str, int]:
        """Keep finished months' report figures, so the first report of a month is quick."""
        from pathlib import Path

        from sqlalchemy import select

        from console.reports import TREND_MONTHS, ReportService
        from core.store.models import Department
        from engine.console_app import ScriptWording

        index = ScriptWording(Path(app.settings.scripts.dir)).satisfaction_index()
        svc = ReportService(app.clock, app.settings.hospital.default_timezone, index)
        with app.db.session() as session:
            ids = list(session.execute(select(Department.id)).scalars())
        for dept_id in ids:
            with app.db.session() as session:
                svc.store_finished_months(session, dept_id, TREND_MONTHS)
        return {"departments": len(ids)}

    async def hl7_feed(stop: asyncio.Event) -> str:
        from engine import his_service

        counts = await his_service.serve_hl7(
            app, None, None, stop, lambda port: log.info("HL7 ADT feed on port %d", port))
        return f"{counts.read} rows read, {counts.rejected} kept aside"

    async def sms(stop: asyncio.Event) -> str:
        from engine import sms_service

        return await sms_service.serve(app, stop)

    def fhir_push() -> str:
        from engine import fhir_service

        r = fhir_service.push(app)
        return f"{r.queued} queued, {r.sent} sent, {r.retried} retry, {r.refused} refused"

    services: dict[str, Service] = {"sms": sms}
    if app.settings.his.hl7_listen:
        services["hl7_feed"] = hl7_feed
    periodic = {"fhir_push": fhir_push} if app.settings.fhir.server_url else {}
    return DaemonJobs(sync_and_plan=sync_and_plan, retention=retention,
                      monthly_report=report_snapshots, services=services, periodic=periodic)
