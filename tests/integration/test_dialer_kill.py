"""SIGKILL the dialer at random points, restart it, and check nothing was lost or doubled:
no task is called again after its call ended for good, no patient ever has two calls at
once, and every answer stored before a kill is still there afterwards."""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from core.clock import SystemClock
from core.enums import AttemptStatus, DialOutcome, ScriptOutcome, TaskStatus
from core.store.db import Database
from core.store.models import Answer, CallAttempt, FollowupTask
from tests.integration.dialer_seed import FAST_ENV, seed_due_tasks

FOLLOWUP = [sys.executable, "-c", "from engine.cli import main; main()"]
REPO = Path(__file__).resolve().parents[2]
FINAL = {ScriptOutcome.COMPLETED, ScriptOutcome.ESCALATED, ScriptOutcome.TRANSFERRED,
         ScriptOutcome.REFUSED, ScriptOutcome.OPTED_OUT, ScriptOutcome.IDENTITY_FAILED,
         ScriptOutcome.HANDOFF_UNANSWERED}


def _dial(data_dir: Path, env: dict[str, str], seed: int) -> subprocess.Popen[bytes]:
    with (data_dir / "dial.log").open("ab") as log:
        return subprocess.Popen([*FOLLOWUP, "--data-dir", str(data_dir), "dial", "--speed",
                                 "400", "--days", "2", "--seed", str(seed)], cwd=REPO,
                                env=env, stdout=log, stderr=subprocess.STDOUT)


def _attempts(db: Database) -> int:
    with db.session() as s:
        return len(s.execute(select(CallAttempt.id)).all())


def _kill_after_progress(proc: subprocess.Popen[bytes], db: Database, calls: int,
                         extra_s: float) -> bool:
    """SIGKILL once `calls` more attempts exist (plus a random moment): mid-campaign, at a
    random point of some call. False if the dialer ended first."""
    start = _attempts(db)
    deadline = time.monotonic() + 120
    while _attempts(db) < start + calls and time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    time.sleep(extra_s)
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return True


def _answers(db: Database) -> dict[int, tuple[str, str | None]]:
    with db.session() as s:
        return {a.id: (a.question_id, a.value) for a in s.execute(select(Answer)).scalars()}


def test_sigkill_never_doubles_a_call_nor_loses_an_answer(tmp_path: Path) -> None:
    data_dir = tmp_path / "store"
    data_dir.mkdir()
    db = Database(f"sqlite:///{data_dir / 'followup.sqlite'}")
    db.migrate()
    seed_due_tasks(db, 120, SystemClock().now())
    env = {**os.environ, **FAST_ENV}
    rng = random.Random(20261126)
    kept: dict[int, tuple[str, str | None]] = {}
    kills = 0
    for round_no in range(5):
        proc = _dial(data_dir, env, seed=round_no)
        kills += _kill_after_progress(proc, db, rng.randint(3, 12), rng.uniform(0.0, 0.5))
        snapshot = _answers(db)
        assert all(snapshot.get(k) == v for k, v in kept.items()), "an answer was lost"
        kept = snapshot
    final = _dial(data_dir, env, seed=99)
    assert final.wait(timeout=300) == 0, (data_dir / "dial.log").read_text()[-3000:]
    assert kills >= 2, "the dialer finished too fast to be killed mid-campaign"

    after = _answers(db)
    assert all(after.get(k) == v for k, v in kept.items()), "an answer was lost"
    with db.session() as s:
        attempts = s.execute(select(CallAttempt).order_by(CallAttempt.id)).scalars().all()
        tasks = {t.id: t for t in s.execute(select(FollowupTask)).scalars()}
    assert attempts, "no call was made"
    assert not [a for a in attempts if a.status in (AttemptStatus.DIALING,
                                                    AttemptStatus.IN_CALL)]
    assert not [t for t in tasks.values() if t.status is TaskStatus.CLAIMED]
    by_task: dict[int, list[CallAttempt]] = {}
    for a in attempts:
        by_task.setdefault(a.task_id, []).append(a)
    for task_id, calls in by_task.items():
        for i, a in enumerate(calls):
            if a.script_outcome in FINAL or a.dial_outcome is DialOutcome.INVALID_NUMBER:
                assert i == len(calls) - 1, f"task {task_id} was called again after it ended"
                assert tasks[task_id].status in (TaskStatus.DONE, TaskStatus.STOPPED)
        # one patient, one call at a time: attempts never overlap
        for a, b in itertools.pairwise(calls):
            assert a.ended_at is not None and a.ended_at <= b.created_at
    unknown = [a for a in attempts if a.status is AttemptStatus.UNKNOWN]
    assert unknown, "no kill landed during a call: the test proved nothing"
    # every attempt cut by a kill was settled and its task went back to the retry policy
    for a in unknown:
        assert tasks[a.task_id].status is not TaskStatus.CLAIMED
    assert len(by_task) == len(tasks)  # every task was called at least once
    db.dispose()
