"""`followup tasks` shows how each task's last call went: the listing reads every task's
latest attempt in its one query (no query per task), on every store; the CLI prints it in
plain words at hospital time."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlalchemy import event, func, insert, select

from core.clock import FakeClock
from core.enums import AttemptStatus, DialOutcome, ScriptOutcome
from core.store.db import Database
from core.store.models import CallAttempt, FollowupTask
from engine.cli import cli
from followup_rules.task_listing import TaskFilter, list_tasks, outcome_words
from tests.contract.test_planning import _seed, _service
from tests.contract.test_planning_cli import store
from tests.unit.rules.factories import NOW

__all__ = ["store"]


def _attempt(task: Any, number: int, at: dt.datetime, dial: DialOutcome | None,
             script: ScriptOutcome | None = None,
             status: AttemptStatus = AttemptStatus.ENDED) -> dict[str, Any]:
    return {"task_id": task.id, "patient_id": task.patient_id,
            "department_id": task.department_id, "number": number, "status": status,
            "backend": "sim", "phone": "+8613800138000", "dialled": True,
            "dial_outcome": dial, "script_outcome": script, "created_at": at}


def test_each_task_carries_its_latest_attempt_in_one_query(db: Database) -> None:
    _seed(db)
    _service(db, FakeClock(NOW)).run()
    with db.engine.connect() as conn:
        tasks = conn.execute(select(FollowupTask).order_by(FollowupTask.id).limit(3)).all()
    busy, answered, dialling = tasks
    with db.engine.begin() as conn:
        conn.execute(insert(CallAttempt), [
            _attempt(busy, 1, NOW, DialOutcome.NO_ANSWER),
            _attempt(busy, 2, NOW + dt.timedelta(hours=2, minutes=31), DialOutcome.BUSY),
            _attempt(answered, 1, NOW, DialOutcome.ANSWERED, ScriptOutcome.COMPLETED),
            _attempt(dialling, 1, NOW, None, status=AttemptStatus.DIALING)])
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        lines, total = list_tasks(db, TaskFilter(limit=1000))
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    # the count, the holds in force (one small read) and the rows, whatever the number of tasks
    assert len(statements) == 3
    assert total == len(lines) > 3
    # the expectation recomputed from the raw rows: each task's attempt with the highest id
    with db.engine.connect() as conn:
        newest = dict(conn.execute(select(CallAttempt.task_id, func.max(CallAttempt.id))
                                   .group_by(CallAttempt.task_id)).all())
        raw = {a.id: a for a in conn.execute(select(CallAttempt)).all()}
    got = {t.task_id: t.last_attempt for t in lines}
    for task_id, last in got.items():
        if task_id not in newest:
            assert last is None
            continue
        row = raw[newest[task_id]]
        assert last is not None
        assert (last.number, last.status, last.dial_outcome, last.script_outcome,
                last.created_at) == (row.number, row.status, row.dial_outcome,
                                     row.script_outcome, row.created_at)
    words = {t.task_id: t.last_attempt.words for t in lines if t.last_attempt}
    assert words == {busy.id: "busy", answered.id: "completed", dialling.id: "dialling"}


def test_outcome_words_prefer_the_script_then_the_dial() -> None:
    assert outcome_words(AttemptStatus.ENDED, DialOutcome.ANSWERED,
                         ScriptOutcome.PARTIAL) == "partly answered"
    assert outcome_words(AttemptStatus.ENDED, DialOutcome.MACHINE, None) == \
        "answering machine"
    assert outcome_words(AttemptStatus.UNKNOWN, None, None) == "outcome unknown"


def test_the_cli_note_says_how_the_last_call_went_in_hospital_time(
        store: Database, tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["--data-dir", str(tmp_path), "plan"]).exit_code == 0
    with store.engine.begin() as conn:
        task = conn.execute(select(FollowupTask).order_by(FollowupTask.due_date)).first()
        assert task is not None
        conn.execute(insert(CallAttempt), [_attempt(
            task, 1, dt.datetime(2026, 12, 8, 2, 31, tzinfo=dt.UTC), DialOutcome.BUSY)])
        conn.execute(FollowupTask.__table__.update().where(  # type: ignore[attr-defined]
            FollowupTask.id == task.id).values(attempts=1))
    out = runner.invoke(cli, ["--data-dir", str(tmp_path), "tasks"])
    assert out.exit_code == 0, out.output
    row = next(line for line in out.output.splitlines() if line.startswith(f"{task.id} "))
    assert row.endswith(f"attempts 1/{task.max_attempts}, last: busy 12-08 10:31")
