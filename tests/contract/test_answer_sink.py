"""The answer sink keeps a patient's answer through a store outage: a restart or a killed
connection mid-call is waited out, and the answer is stored once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core.audit import AuditLog
from core.clock import FakeClock
from core.errors import StoreError, StoreUnavailable
from core.store.db import Database
from core.store.models import Answer as AnswerRow
from dialer.attempt_log import AttemptLog
from dialer.call_handler import StoreAnswerSink
from dialer.call_plan import AttemptId
from dialer.retry_policy import RetryPolicy
from recordings.store import RecordingStore
from tests.audit_key import TEST_AUDIT_KEY
from tests.contract.test_attempt_log import _answer, _claim_one
from tests.contract.test_claims import NOW


class OutageStore:
    """The real store behind an outage: the first `failures` calls fail as a restarting
    server fails them, the rest go through."""

    def __init__(self, db: Database, failures: int,
                 error: Callable[[], Exception] = lambda: StoreUnavailable(
                     "database unavailable: the database system is shutting down")) -> None:
        self._db = db
        self.failures = failures
        self._error = error

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.failures:
            self.failures -= 1
            raise self._error()
        return await self._db.call(fn, *args, **kwargs)


class Pauses:
    def __init__(self) -> None:
        self.taken: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.taken.append(seconds)


def _setup(db: Database, tmp_path: Path) -> tuple[AttemptLog, AttemptId]:
    clock = FakeClock(NOW)
    log = AttemptLog(db, RetryPolicy(), RecordingStore(tmp_path / "rec", clock,
                                                       AuditLog(clock, TEST_AUDIT_KEY)), "sim")
    task = _claim_one(db).claim(NOW, 1)[0]
    return log, log.begin(task, NOW)


def _stored(db: Database) -> list[tuple[str, str | None]]:
    with db.session() as s:
        return [(r.question_id, r.value) for r in s.execute(select(AnswerRow)).scalars()]


async def test_an_answer_given_while_the_store_restarts_is_stored_once(
        db: Database, tmp_path: Path) -> None:
    log, attempt = _setup(db, tmp_path)
    store = OutageStore(db, failures=4)
    pauses = Pauses()
    sink = StoreAnswerSink(store, log, attempt, FakeClock(NOW),  # type: ignore[arg-type]
                           sleep=pauses)
    await sink.save(_answer("q1", "yes"))
    assert _stored(db) == [("q1", "yes")]
    assert store.failures == 0
    assert pauses.taken == [0.1, 0.2, 0.4, 0.8]  # backing off


async def test_a_store_away_too_long_fails_the_save(db: Database, tmp_path: Path) -> None:
    log, attempt = _setup(db, tmp_path)
    pauses = Pauses()
    sink = StoreAnswerSink(OutageStore(db, failures=1000), log,  # type: ignore[arg-type]
                           attempt, FakeClock(NOW), sleep=pauses, retry_s=3.0)
    with pytest.raises(StoreUnavailable):
        await sink.save(_answer("q1", "yes"))
    assert sum(pauses.taken) >= 3.0
    assert max(pauses.taken) <= 5.0
    assert _stored(db) == []


async def test_a_permanent_store_error_is_not_retried(db: Database, tmp_path: Path) -> None:
    log, attempt = _setup(db, tmp_path)
    pauses = Pauses()
    store = OutageStore(db, failures=1, error=lambda: StoreError("value too long"))
    sink = StoreAnswerSink(store, log, attempt, FakeClock(NOW),  # type: ignore[arg-type]
                           sleep=pauses)
    with pytest.raises(StoreError):
        await sink.save(_answer("q1", "yes"))
    assert pauses.taken == []
