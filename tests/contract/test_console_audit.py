"""What the console writes to the audit log survives `followup audit verify` only untouched:
a modified or deleted row (a login, a playback) is detected and named."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, select, update

from core.audit import AuditLog
from core.clock import FakeClock
from core.store.db import Database
from core.store.models import AuditEntry, AuditHead
from engine.cli import cli
from tests.audit_key import TEST_AUDIT_KEY
from tests.unit.console.fixtures import running_site
from tests.unit.console.seed import PASSWORD
from tests.unit.console.server import Client


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> Database:
    url = f"sqlite:///{tmp_path / 'audit.sqlite'}"
    monkeypatch.setenv("FOLLOWUP_DATABASE__URL", url)
    monkeypatch.setenv("FOLLOWUP_AUDIT__KEY", TEST_AUDIT_KEY.hex())
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


def test_the_newest_rows_deleted_with_the_head_are_caught_by_the_anchor(
        store: Database, tmp_path: Path) -> None:
    """Found in a trial: deleting the newest entries together with the `audit_head` row
    made `audit verify` answer "intact"."""
    failed = _entry(store, "login.failed")
    with store.session() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.id == failed.id))
        s.execute(delete(AuditHead))
    code, output = _verify(tmp_path)
    assert code == 1 and f"BROKEN at entry {failed.id}" in output
    assert "not in the store" in output


def test_a_chain_rewritten_without_the_key_is_caught(store: Database, tmp_path: Path,
                                                     clock: FakeClock) -> None:
    """Someone with write access to the database rewrites every row and hash (here with
    a key of their own, as they do not have the hospital's)."""
    forger = AuditLog(clock, b"not the hospital's key at all!!!")
    with store.session() as s:
        rows = s.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars().all()
        kept = [(r.actor, r.action, r.object_type, r.object_id, dict(r.detail)) for r in rows
                if r.action != "recording.play"]  # the playback they want gone
        s.execute(delete(AuditEntry))
        s.execute(delete(AuditHead))
    with store.session() as s:
        for actor, action, kind, obj, detail in kept:
            forger.append(s, actor, action, kind, obj, detail)
    code, output = _verify(tmp_path)
    assert code == 1 and "written without the audit key" in output


def test_a_missing_anchor_file_is_reported(store: Database, tmp_path: Path) -> None:
    (tmp_path / "recordings" / "audit-anchor.log").unlink()
    code, output = _verify(tmp_path)
    assert code == 1 and "anchor file" in output and "missing" in output
