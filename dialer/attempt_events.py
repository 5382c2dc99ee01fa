"""The attempt log's subscription to call progress: `mark_dialled` and `mark_answered`
written when they happen, not when the call ends.

Each write runs in the store's worker thread as its own task, so the backend that published
the event never waits on the database. A write that fails is logged and left to `finish`,
which records dialled and answered itself; `drain(attempt)` lets the campaign wait for an
attempt's writes before it finishes the attempt, so they never land after it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable

from core.enums import CallProgress
from core.store.db import Database
from dialer.attempt_log import AttemptLog
from dialer.call_plan import AttemptId, ProgressEvent

log = logging.getLogger(__name__)


class AttemptRecorder:
    """A `ProgressBus` listener writing DIALLED and ANSWERED to the attempt log."""

    def __init__(self, db: Database, attempts: AttemptLog) -> None:
        self._db = db
        self._attempts = attempts
        self._pending: dict[AttemptId, list[asyncio.Task[None]]] = {}

    def __call__(self, event: ProgressEvent) -> None:
        write: Callable[[], None]
        if event.progress is CallProgress.DIALLED:
            write = functools.partial(self._attempts.mark_dialled, event.attempt_id,
                                      event.at, event.channel or None, event.uniqueid,
                                      event.linkedid)
        elif event.progress is CallProgress.ANSWERED:
            write = functools.partial(self._attempts.mark_answered, event.attempt_id,
                                      event.at)
        else:
            return
        task = asyncio.get_running_loop().create_task(self._write(event, write))
        self._pending.setdefault(event.attempt_id, []).append(task)

    async def _write(self, event: ProgressEvent, write: Callable[[], None]) -> None:
        try:
            await self._db.call(write)
        except Exception as exc:  # finish() records it from the report; never break a call
            log.warning("attempt %s: could not record %s now (%s); the call's end will",
                        event.attempt_id, event.progress.value, exc)

    async def drain(self, attempt_id: AttemptId) -> None:
        """Wait until every progress write of `attempt_id` has landed (or failed)."""
        tasks = self._pending.pop(attempt_id, [])
        if tasks:
            await asyncio.gather(*tasks)
