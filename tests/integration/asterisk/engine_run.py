"""Run the engine's real dialer on the Asterisk backend until nothing more is due now.

This is the composition `followup run --backend asterisk` makes (`build_dialer` with the
`asterisk_backend` over the IVR handler), driven with `until_idle` so a test knows when
its calls are over.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import insert

from core.clock import SystemClock
from core.enums import EncounterType, Sex, TaskStatus
from core.store.db import Database
from core.store.models import Department, Encounter, FollowupTask, Patient
from dialer.asterisk.backend import AsteriskBackend
from dialer.call_handler import IvrCallHandler
from dialer.campaign import CampaignStats
from dialer.telephony import Telephony
from engine.app import App, build_app
from engine.dialing import asterisk_backend, build_dialer
from ivr.script_model import Script
from tests.integration.asterisk.server import AsteriskServer

SCRIPT = "asterisk-check"
BIRTH_YEAR = 1951


def make_app(server: AsteriskServer, store_dir: Path) -> App:
    store_dir.mkdir(parents=True, exist_ok=True)
    app = build_app(server.settings(store_dir), SystemClock())
    app.db.migrate()
    return app


def seed_call(db: Database, now: dt.datetime, phone: str = "+8613800000001",
              script: str = SCRIPT) -> int:
    """One patient (born 1951, English) with one follow-up due now. Returns the task id."""
    return seed_calls(db, now, [phone], script)[0]


def seed_calls(db: Database, now: dt.datetime, phones: list[str],
               script: str = SCRIPT) -> list[int]:
    """One patient per phone (born 1951, English), each with one follow-up due now.
    Returns the task ids (1..n)."""
    ids = range(1, len(phones) + 1)
    with db.session() as s:
        s.execute(insert(Department), [{"id": 1, "code": "CARD", "name": "Cardiology",
                                        "name_en": "Cardiology"}])
        s.execute(insert(Patient), [{
            "id": i, "his_id": f"P{i}", "mrn": f"M{i}", "name": "Lee", "sex": Sex.MALE,
            "birth_date": dt.date(BIRTH_YEAR, 5, 1), "phone": phone, "language": "en-US",
            "timezone": "UTC", "content_hash": "h", "updated_at": now, "plan_dirty": False}
            for i, phone in zip(ids, phones, strict=True)])
        s.execute(insert(Encounter), [{
            "id": i, "his_id": f"E{i}", "patient_id": i, "type": EncounterType.INPATIENT,
            "department_id": 1, "admit_at": now - dt.timedelta(days=6),
            "discharge_at": now - dt.timedelta(days=3), "diagnoses": ["I21.0"],
            "procedures": [], "content_hash": "h", "updated_at": now, "plan_dirty": False}
            for i in ids])
        s.execute(insert(FollowupTask), [{
            "id": i, "plan_key": f"{i}:it:3", "patient_id": i, "encounter_id": i,
            "department_id": 1, "rule_id": "it", "offset_days": 3, "script_id": script,
            "script_version": 1, "call_scripts": [script], "due_date": now.date(),
            "calling_window": "00:00-24:00", "timezone": "UTC", "window_start": now,
            "window_end": now + dt.timedelta(days=1), "priority": 50,
            "status": TaskStatus.PENDING, "attempts": 0, "max_attempts": 3,
            "next_attempt_at": now - dt.timedelta(minutes=1), "created_at": now,
            "updated_at": now} for i in ids])
    return list(ids)


async def run_due_calls(app: App, timeout_s: float = 90,
                        during: Callable[[], Awaitable[None]] | None = None) -> CampaignStats:
    """Place every call due now through Asterisk; return when none is left due now.
    `during` runs beside the campaign (a fault to inject); it must end before it does."""
    clock = app.clock
    started: list[AsteriskBackend] = []

    def factory(handler: IvrCallHandler, scripts: list[Script]) -> Telephony:
        backend = asterisk_backend(app, clock, handler)
        started.append(backend)
        return backend

    parts = build_dialer(app, clock, asyncio.sleep, factory, backend="asterisk",
                         owner="asterisk-tier")
    try:
        for backend in started:
            await backend.start()
        campaign = parts.campaign.run(asyncio.Event(), until_idle=True,
                                      next_due=parts.claimer.next_due, horizon=clock.now())
        if during is None:
            return await asyncio.wait_for(campaign, timeout_s)
        stats, _ = await asyncio.wait_for(asyncio.gather(campaign, during()), timeout_s)
        return stats
    finally:
        for backend in started:
            await backend.close()
        parts.close()
