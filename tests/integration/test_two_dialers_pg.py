"""Two `followup run` processes against one PostgreSQL work a campaign of 2,000 tasks on
the sim backend: every task ends exactly once and no patient ever has two calls at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.clock import SystemClock
from core.enums import AttemptStatus, ScriptOutcome, TaskStatus
from core.live_feeds import live_feeds
from core.store.db import Database
from core.store.models import CallAttempt, FollowupTask
from tests.conftest import PG_URL
from tests.integration.dialer_seed import FAST_ENV, attempts_by_department, seed_due_tasks
from tests.pg_scratch import scratch_database

FOLLOWUP = [sys.executable, "-c", "from engine.cli import main; main()"]
REPO = Path(__file__).resolve().parents[2]
TASKS = 2000
FINAL = {ScriptOutcome.COMPLETED, ScriptOutcome.ESCALATED, ScriptOutcome.TRANSFERRED,
         ScriptOutcome.REFUSED, ScriptOutcome.OPTED_OUT, ScriptOutcome.IDENTITY_FAILED,
         ScriptOutcome.HANDOFF_UNANSWERED}

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not PG_URL:
        pytest.skip("PostgreSQL not configured: set FOLLOWUP_TEST_PG_URL")
    with scratch_database(PG_URL, "t_two") as url:
        yield url


def _two_dialers(tmp_path: Path, env: dict[str, str], speed: int
                 ) -> list[subprocess.Popen[bytes]]:
    """Two `followup run` processes (sim, seeds 1 and 2) on one simulated clock, each
    logging to tmp_path/dialer<n>/run.log."""
    epoch = SystemClock().now().isoformat()
    procs = []
    for n in (1, 2):
        data_dir = tmp_path / f"dialer{n}"
        data_dir.mkdir()
        with (data_dir / "run.log").open("ab") as log:
            procs.append(subprocess.Popen(
                [*FOLLOWUP, "--data-dir", str(data_dir), "run", "--no-jobs", "--speed",
                 str(speed), "--seed", str(n), "--sim-epoch", epoch], cwd=REPO, env=env,
                stdout=log, stderr=subprocess.STDOUT))
    return procs


def _open(db: Database) -> int:
    with db.session() as s:
        return int(s.execute(select(func.count()).select_from(FollowupTask).where(
            FollowupTask.status.in_([TaskStatus.PENDING, TaskStatus.CLAIMED]))).scalar_one())


@pytest.fixture
def db(pg_url: str) -> Iterator[Database]:
    database = Database(pg_url)
    database.migrate()
    yield database
    database.dispose()


def test_two_dialer_processes_share_a_campaign(db: Database, pg_url: str,
                                              tmp_path: Path) -> None:
    seed_due_tasks(db, TASKS, SystemClock().now())
    # the lease is in simulated seconds: at --speed 600 an hour is 6 s of real time, room
    # for a loaded CI machine's late renewals
    env = {**os.environ, **FAST_ENV, "FOLLOWUP_DATABASE__URL": pg_url,
           "FOLLOWUP_DIALER__MAX_CHANNELS": "40", "FOLLOWUP_DIALER__LEASE_SECONDS": "3600"}
    procs = _two_dialers(tmp_path, env, speed=600)
    deadline = time.monotonic() + 900
    try:
        while _open(db) and time.monotonic() < deadline:
            assert all(p.poll() is None for p in procs), "a dialer died"
            time.sleep(1.0)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes = [p.wait(timeout=120) for p in procs]
    logs = "\n".join((tmp_path / f"dialer{n}" / "run.log").read_text()[-2000:] for n in (1, 2))
    assert _open(db) == 0, f"tasks left open after 900 s\n{logs}"
    assert codes == [0, 0], logs

    with db.session() as s:
        attempts = s.execute(select(CallAttempt).order_by(CallAttempt.id)).scalars().all()
        tasks = {t.id: t for t in s.execute(select(FollowupTask)).scalars()}
    assert len(tasks) == TASKS
    assert all(t.status in (TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.STOPPED)
               for t in tasks.values())
    assert not [a for a in attempts if a.status is not AttemptStatus.ENDED]
    by_task: dict[int, list[CallAttempt]] = {}
    for a in attempts:
        by_task.setdefault(a.task_id, []).append(a)
    assert set(by_task) == set(tasks)
    for task_id, calls in by_task.items():
        finals = [a for a in calls if a.script_outcome in FINAL]
        assert len(finals) <= 1, f"task {task_id} ended twice"
        if finals:
            assert calls[-1] is finals[0], f"task {task_id} was called after it ended"
        assert len(calls) <= tasks[task_id].max_attempts + sum(
            1 for a in calls if not a.dialled)
    # both processes did part of the work (the lease owner is not kept; the backend column
    # is the same) - count by which process's log reports calls
    assert all("Traceback" not in (tmp_path / f"dialer{n}" / "run.log").read_text()
               for n in (1, 2)), logs


def test_two_dialer_processes_both_obey_a_pause_within_5_s(db: Database, pg_url: str,
                                                          tmp_path: Path) -> None:
    """Both processes work both departments; a cardiology pause from the CLI stops every
    new cardiology call within 5 s (either process placing one would show in the count),
    orthopaedics goes on, and a resume restarts cardiology."""
    seed_due_tasks(db, 1200, SystemClock().now(), departments=2)
    env = {**os.environ, **FAST_ENV, "FOLLOWUP_DATABASE__URL": pg_url,
           "FOLLOWUP_DIALER__MAX_CHANNELS": "6", "FOLLOWUP_DIALER__CALLS_PER_SECOND": "3",
           "FOLLOWUP_DIALER__LEASE_SECONDS": "3600"}
    procs = _two_dialers(tmp_path, env, speed=10)

    def campaign(*args: str) -> str:
        done = subprocess.run([*FOLLOWUP, "--data-dir", str(tmp_path / "dialer1"), "campaign",
                               *args], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    try:
        deadline = time.monotonic() + 60
        while min(attempts_by_department(db).get(d, 0) for d in (1, 2)) < 5:
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
            time.sleep(0.5)
        with db.session() as s:  # both processes are up and serving their live feeds
            assert len(live_feeds(s, SystemClock().now())) == 2
        assert campaign("pause", "--department", "CARD", "--reason", "ward round") == \
            "department CARD paused"
        time.sleep(5.0)
        obeyed = attempts_by_department(db)
        time.sleep(10.0)
        later = attempts_by_department(db)
        assert later[1] == obeyed[1], (obeyed, later)
        assert later[2] > obeyed[2], (obeyed, later)
        assert "department CARD 心内科" in campaign("status")
        assert campaign("resume", "--department", "CARD") == "department CARD resumed"
        deadline = time.monotonic() + 15
        while attempts_by_department(db)[1] == later[1]:
            assert time.monotonic() < deadline, "cardiology did not restart"
            time.sleep(0.5)
        assert all(p.poll() is None for p in procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes = [p.wait(timeout=120) for p in procs]
    logs = "\n".join((tmp_path / f"dialer{n}" / "run.log").read_text()[-2000:] for n in (1, 2))
    assert codes == [0, 0] and "Traceback" not in logs, logs
