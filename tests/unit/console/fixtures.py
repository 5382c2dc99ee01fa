"""A running console over a seeded store: import `site_fixture` into a test module to get
the `site` fixture."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from console.definitions import DefinitionFile, StaticDefinitions
from console.deps import ConsoleDeps
from console.web import create_app
from core.audit import AuditLog
from core.clock import FakeClock
from core.errors import TelephonyError
from core.store.db import Database
from engine.console_app import ScriptWording
from recordings.store import RecordingStore
from tests.audit_key import TEST_AUDIT_KEY
from tests.unit.console.seed import Seeded, seed
from tests.unit.console.server import serving

SCRIPTS = Path(__file__).resolve().parents[3] / "scripts"
SECRET = "test-secret-key-that-is-long-enough-0123456789"


class RecordingClickToCall:
    """A fake click-to-call that remembers what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []

    async def call(self, *, agent_extension: str, patient_phone: str, ticket_id: int) -> str:
        if agent_extension == "0000":  # an extension the PBX refuses
            raise TelephonyError("AMI Originate refused: extension 0000")
        self.calls.append((agent_extension, patient_phone, ticket_id))
        return f"ringing {agent_extension}"


@dataclass
class Site:
    base: str
    db: Database
    clock: FakeClock
    store: RecordingStore
    seeded: Seeded
    click: RecordingClickToCall


def build_deps(db: Database, clock: FakeClock, store: RecordingStore,
               click: RecordingClickToCall, audit: AuditLog) -> ConsoleDeps:
    return ConsoleDeps(
        db=db, clock=clock, audit=audit, recordings=store,
        secret_key=SECRET,
        timezone="Asia/Shanghai", hospital_name="示范医院", hospital_name_en="Demo Hospital",
        max_failed_logins=3,
        definitions=StaticDefinitions([
            DefinitionFile("script", "demo/v1/en-US.yaml", "id: demo\n", ""),
            DefinitionFile("rules", "broken.yaml", "rules: [", "broken.yaml:1: rules: bad"),
        ]),
        questions=ScriptWording(SCRIPTS),
        click_to_call=click)


@contextmanager
def running_site(db: Database, clock: FakeClock, tmp_path: Path) -> Iterator[Site]:
    # the audit chain anchored where `followup audit verify --data-dir tmp_path` looks
    audit = AuditLog(clock, TEST_AUDIT_KEY, tmp_path / "recordings" / "audit-anchor.log")
    store = RecordingStore(tmp_path / "recordings", clock, audit)
    seeded = seed(db, clock, store)
    click = RecordingClickToCall()
    with serving(create_app(build_deps(db, clock, store, click, audit))) as base:
        yield Site(base, db, clock, store, seeded, click)


@pytest.fixture(name="site")
def site_fixture(db: Database, clock: FakeClock, tmp_path: Path) -> Iterator[Site]:
    with running_site(db, clock, tmp_path) as running:
        yield running
