"""`followup run`: the production daemon.

APScheduler 3 (asyncio) runs the periodic jobs — HIS sync then planning, recording
retention, the monthly report — while the campaign loop dials; long-running services (the
HL7 ADT listener) run beside it until the stop. Each job is thin: it calls
one service in a worker thread and logs the result; a failing job is logged and retried at
its next run, never taking the dialer down. SIGTERM (or SIGINT) stops new calls and lets the
calls in progress finish before the process exits.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from core.clock import Clock
from dialer.campaign import Campaign

log = logging.getLogger(__name__)

Job = Callable[[], Any]
Service = Callable[[asyncio.Event], Awaitable[Any]]  # runs until the event is set


@dataclass
class DaemonJobs:
    """The blocking services the scheduler runs (each in a worker thread)."""

    sync_and_plan: Job | None = None
    retention: Job | None = None
    monthly_report: Job | None = None
    sync_minutes: int = 15
    periodic: dict[str, Job] = field(default_factory=dict)  # every sync_minutes (FHIR push)
    services: dict[str, Service] = field(default_factory=dict)


class Daemon:
    def __init__(self, campaign: Campaign, jobs: DaemonJobs, timezone: str,
                 clock: Clock, next_due: Callable[[], dt.datetime | None] | None = None) -> None:
        self._campaign = campaign
        self._next_due = next_due
        self._clock = clock
        self._jobs = jobs
        self._timezone = timezone
        self.stop = asyncio.Event()
        self.job_runs: dict[str, int] = {}
        self.job_errors: dict[str, int] = {}

    def _wrap(self, name: str, job: Job) -> Callable[[], Any]:
        async def run() -> None:
            try:
                result = await asyncio.to_thread(job)
                log.info("job %s: %s", name, result)
                self.job_runs[name] = self.job_runs.get(name, 0) + 1
            except Exception:  # a job failure is logged; the next run tries again
                log.exception("job %s failed", name)
                self.job_errors[name] = self.job_errors.get(name, 0) + 1

        return run

    def scheduler(self) -> AsyncIOScheduler:
        sched = AsyncIOScheduler(timezone=self._timezone)
        j = self._jobs
        defaults: dict[str, Any] = {"max_instances": 1, "coalesce": True,
                                    "misfire_grace_time": 300}
        if j.sync_and_plan is not None:
            sched.add_job(self._wrap("sync_and_plan", j.sync_and_plan), "interval",
                          minutes=j.sync_minutes, id="sync_and_plan",
                          next_run_time=self._clock.now(), **defaults)
        for name, job in j.periodic.items():
            sched.add_job(self._wrap(name, job), "interval", minutes=j.sync_minutes, id=name,
                          next_run_time=self._clock.now(), **defaults)
        if j.retention is not None:
            sched.add_job(self._wrap("retention", j.retention), "cron", hour=3, minute=17,
                          id="retention", **defaults)
        if j.monthly_report is not None:  # nightly: keeps finished months' report figures
            sched.add_job(self._wrap("monthly_report", j.monthly_report), "cron", hour=2,
                          minute=43, id="monthly_report", **defaults)
        return sched

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        log.warning("%s: no new calls; waiting for calls in progress", sig.name)
        self.stop.set()

    async def _service(self, name: str, service: Service) -> None:
        """One service until the stop; a failure is logged and never stops the dialer."""
        try:
            result = await service(self.stop)
            log.info("service %s stopped: %s", name, result)
        except Exception as exc:
            log.error("service %s failed: %s", name, exc)
            self.job_errors[name] = self.job_errors.get(name, 0) + 1

    async def run(self) -> None:
        sched = self.scheduler()
        sched.start()
        services = [asyncio.create_task(self._service(name, svc), name=f"service-{name}")
                    for name, svc in self._jobs.services.items()]
        try:
            await self._campaign.run(self.stop, next_due=self._next_due)
        finally:
            sched.shutdown(wait=False)
            self.stop.set()
            await asyncio.gather(*services)

