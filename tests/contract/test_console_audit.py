"""What the console writes to the audit log survives `followup audit verify` only untouched:
a modified or deleted row (a login, a playback) is detected and named."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, select, update

from core.clock import FakeClock
from core.store.db import Database
from core.store.models import AuditEntry
from engine.cli import cli
from tests.unit.console.fixtures import running_site
from tests.unit.console.seed import PASSWORD
from tests.unit.console.server import Client


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> Database:
    url = f"sqlite:///{tmp_path / 'audit.sqlite'}"
    monkeypatch.setenv("FOLLOWUP_DATABASE__URL", url)
    monkeypatch.delenv("FOLLOWUP_CONFIG", raising=False)
    db = Database(url)
    db.migrate()
    with running_site(db, clock, tmp_path) as site:
        c = Client(site.base)
        assert c.login("sup_card", PASSWORD).status == 200
        assert c.get(f"/recordings/{site.seeded.card_recording}/audio").status == 200
        assert c.login("mgr_card", "wrong password").status == 401
    return db


def _verify(tmp_path: Path) -> tuple[int, str]:
    out = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "audit", "verify"])
    return out.exit_code, out.output


def _entry(db: Database, action: str) -> AuditEntry:
    with db.session() as s:
        return s.execute(select(AuditEntry).where(AuditEntry.action == action)).scalar_one()


def test_untouched_log_verifies(store: Database, tmp_path: Path) -> None:
    code, output = _verify(tmp_path)
    assert code == 0 and "audit log intact: 3 entries" in output


def test_a_modified_playback_row_is_detected(store: Database, tmp_path: Path) -> None:
    play = _entry(store, "recording.play")
    with store.session() as s:  # someone hides who listened
        s.execute(update(AuditEntry).where(AuditEntry.id == play.id)
                  .values(actor="user:someone_else"))
    code, output = _verify(tmp_path)
    assert code == 1 and f"BROKEN at entry {play.id}" in output and "content changed" in output


def test_a_deleted_login_row_is_detected(store: Database, tmp_path: Path) -> None:
    login = _entry(store, "login.success")
    with store.session() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.id == login.id))
    code, output = _verify(tmp_path)
    assert code == 1 and "link broken" in output


def test_a_deleted_newest_row_is_detected(store: Database, tmp_path: Path) -> None:
    failed = _entry(store, "login.failed")
    with store.session() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.id == failed.id))
    code, output = _verify(tmp_path)
    assert code == 1 and "newest entries were deleted" in output
