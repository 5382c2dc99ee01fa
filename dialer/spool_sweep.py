"""Filing what a failing recordings folder left in the spool.

When the recordings folder is full or read-only, an answer is stored with its clip's path
(`answers.clip_spool`) and a call with its recording's (`call_attempts.recording_spool`);
nothing is lost, and calling pauses with an alarm. Once the folder takes files again,
`sweep_spool` files them, clears the paths and removes the spooled originals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update

from core.enums import RecordingKind
from core.store.db import Database
from core.store.models import Answer as AnswerRow
from core.store.models import CallAttempt
from dialer.attempt_log import AttemptLog
from recordings.store import RecordingStore

log = logging.getLogger(__name__)


@dataclass
class SpoolSweep:
    """What a spool sweep did: files filed, files still waiting, the first problem."""

    filed: int = 0
    waiting: int = 0
    problem: str | None = None


def sweep_spool(db: Database, attempts: AttemptLog, recordings: RecordingStore) -> SpoolSweep:
    """File the clips and call recordings a failing recordings folder left in the
    spool. Stops at the first failure (the folder is still failing)."""
    sweep = SpoolSweep()
    with db.session() as s:
        clips = s.execute(select(AnswerRow.id, AnswerRow.attempt_id, AnswerRow.clip_spool,
                                 CallAttempt.department_id)
                          .join(CallAttempt, CallAttempt.id == AnswerRow.attempt_id)
                          .where(AnswerRow.clip_spool.is_not(None))).all()
        calls = s.execute(select(CallAttempt.id, CallAttempt.recording_spool,
                                 CallAttempt.department_id)
                          .where(CallAttempt.recording_spool.is_not(None))).all()
    sweep.waiting = len(clips) + len(calls)
    for answer_id, attempt_id, spool, dept in clips:
        spool = str(spool)
        if not Path(spool).exists():
            if _clip_filed(db, answer_id):  # by the dialer that took it, since the listing
                sweep.waiting -= 1
                continue
            log.error("answer %s: spooled clip %s is gone", answer_id, spool)
            continue
        if not attempts.file_clip(answer_id, attempt_id, dept, Path(spool)):
            sweep.problem = f"answer clip {spool} could not be filed"
            return sweep
        sweep.filed += 1
        sweep.waiting -= 1
    for attempt_id, spool, dept in calls:
        source = Path(str(spool))
        try:
            with db.session() as s:
                stored = recordings.file_path(
                    s, source, kind=RecordingKind.CALL, attempt_id=attempt_id,
                    department_id=dept)
                s.execute(update(CallAttempt).where(CallAttempt.id == attempt_id)
                          .values(recording_spool=None))
        except FileNotFoundError:
            log.error("attempt %s: spooled recording %s is gone", attempt_id, source)
            continue
        except OSError as exc:
            sweep.problem = f"call recording {source}: {exc.strerror or exc}"
            return sweep
        recordings.discard_source(source, stored)
        sweep.filed += 1
        sweep.waiting -= 1
    return sweep


def _clip_filed(db: Database, answer_id: int) -> bool:
    """The answer's clip is no longer in the spool: the dialer that took the answer files
    it right after storing the row, so a sweep may list it just before that."""
    with db.session() as s:
        return s.execute(select(AnswerRow.clip_spool)
                         .where(AnswerRow.id == answer_id)).scalar_one_or_none() is None
