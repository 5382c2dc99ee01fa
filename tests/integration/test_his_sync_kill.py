"""A sync killed with SIGKILL midway, then restarted, ends with the same store as an
uninterrupted one: batches, rejects and the watermark commit together, and the restart
resumes from the last committed (watermark, key)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from core.enums import SyncRunStatus
from core.store.db import Database
from core.store.models import HisSyncRun
from hisync.synthetic import Manifest, generate_his
from tests.contract.test_hisync import dump

FOLLOWUP = [sys.executable, "-c", "from engine.cli import main; main()"]
REPO = Path(__file__).resolve().parents[2]


def _followup(data_dir: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    data_dir.mkdir(exist_ok=True)
    with (data_dir / "cli.log").open("ab") as log:
        return subprocess.Popen([*FOLLOWUP, "--data-dir", str(data_dir), *args], cwd=REPO,
                                env=env, stdout=log, stderr=subprocess.STDOUT)


def _log(data_dir: Path) -> str:
    return (data_dir / "cli.log").read_text(encoding="utf-8", errors="replace")[-3000:]


def _count(store: Path, sql: str) -> int:
    try:
        conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute(sql).fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:  # not created or migrated yet
        return 0


def _kill_when(proc: subprocess.Popen[bytes], store: Path, sql: str, at_least: int) -> None:
    deadline = time.monotonic() + 120
    while _count(store, sql) < at_least:
        if proc.poll() is not None:
            pytest.fail(f"sync ended before it could be killed:\n{_log(store.parent)}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("sync made no progress in 120 s")
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


@pytest.mark.slow
def test_sigkill_midway_then_restart_equals_uninterrupted_sync(tmp_path: Path) -> None:
    his = tmp_path / "his.sqlite"
    manifest: Manifest = generate_his(his, patients=10_000)
    clean_patients = manifest.patient_rows - sum(
        b.rows for b in manifest.broken if b.entity == "patients")
    clean_encounters = manifest.encounter_rows - sum(
        b.rows for b in manifest.broken if b.entity == "encounters")
    env = {**os.environ, "FOLLOWUP_HIS__BATCH_SIZE": "97", "FOLLOWUP_HIS__WORKERS": "2",
           "FOLLOWUP_HIS__SOURCE": f"sqlite:///{his}", "PYTHONPATH": str(REPO)}
    env.pop("FOLLOWUP_CONFIG", None)
    killed, calm = tmp_path / "killed", tmp_path / "calm"
    for data_dir in (killed, calm):
        assert _followup(data_dir, "init", env=env).wait(timeout=120) == 0

    store = killed / "followup.sqlite"
    # Killed twice: once while patients are being copied, once during the encounters.
    proc = _followup(killed, "his", "sync", env=env)
    _kill_when(proc, store, "SELECT count(*) FROM patients", clean_patients // 3)
    assert _count(store, "SELECT count(*) FROM patients") < clean_patients
    proc = _followup(killed, "his", "sync", env=env)
    _kill_when(proc, store, "SELECT count(*) FROM encounters", clean_encounters // 2)
    assert _count(store, "SELECT count(*) FROM encounters") < clean_encounters
    assert _followup(killed, "his", "sync", env=env).wait(timeout=300) == 0, _log(killed)
    assert _followup(calm, "his", "sync", env=env).wait(timeout=300) == 0, _log(calm)

    a = Database(f"sqlite:///{store}")
    b = Database(f"sqlite:///{calm / 'followup.sqlite'}")
    try:
        got, want = dump(a), dump(b)
        assert len(want["patients"]) == clean_patients
        assert len(want["encounters"]) == clean_encounters
        assert len(want["rejects"]) == sum(x.rows for x in manifest.broken)
        assert got == want
        with a.session() as s:
            statuses = s.execute(select(HisSyncRun.status).order_by(HisSyncRun.id)).scalars()
            assert list(statuses) == [SyncRunStatus.FAILED, SyncRunStatus.FAILED,
                                      SyncRunStatus.COMPLETED]
    finally:
        a.dispose()
        b.dispose()
