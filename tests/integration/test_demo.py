"""`followup demo` runs to the end on a fresh data folder (the README's first command runs
it after installing): HIS synthesised and synced, calls planned and made through the real
IVR, answers, recordings (intact) and tickets stored."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.audit import AuditLog
from core.clock import SystemClock
from core.store.db import Database
from core.store.models import Answer, CallAttempt, Recording, Ticket
from recordings.store import RecordingStore
from tests.audit_key import TEST_AUDIT_KEY

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None,
                                reason="the demo speaks its prompts: needs espeak-ng and sox")


def test_demo_runs_to_the_end(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    out = subprocess.run(
        [sys.executable, "-c", "from engine.cli import main; main()", "--data-dir",
         str(data_dir), "demo", "--patients", "300", "--days", "14", "--speed", "600",
         "--today", "2026-11-26", "--no-console"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for step in ("synthetic HIS", "HIS sync", "planned", "calling", "done"):
        assert step in out.stdout
    db = Database(f"sqlite:///{data_dir / 'followup.sqlite'}")
    clock = SystemClock()
    store = RecordingStore(data_dir / "recordings", clock, AuditLog(clock, TEST_AUDIT_KEY))
    with db.session() as s:
        calls = s.execute(select(func.count()).select_from(CallAttempt)).scalar_one()
        answers = s.execute(select(func.count()).select_from(Answer)).scalar_one()
        tickets = s.execute(select(func.count()).select_from(Ticket)).scalar_one()
        recordings = s.execute(select(Recording.id)).scalars().all()
        assert calls > 5 and answers > 5 and tickets >= 1 and recordings
        assert all(store.verify(s, rid) is None for rid in recordings)
    db.dispose()
