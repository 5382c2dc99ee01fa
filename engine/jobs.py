"""The daemon's scheduled jobs, each one service call (run in a worker thread)."""

from __future__ import annotations

from typing import Any

from engine.app import App
from engine.daemon import DaemonJobs


def daemon_jobs(app: App) -> DaemonJobs:
    def sync_and_plan() -> dict[str, Any]:
        from engine import his_service
        from engine.planning import planning_service

        out: dict[str, Any] = {}
        if app.settings.his.source:
            report = his_service.run_sync(app)
            out["his"] = {"status": report.status.value, "read": report.totals.read,
                          "rejected": report.totals.rejected}
        counts = planning_service(app).run()
        out["plan"] = str(counts)
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

    return DaemonJobs(sync_and_plan=sync_and_plan, retention=retention,
                      monthly_report=report_snapshots)
