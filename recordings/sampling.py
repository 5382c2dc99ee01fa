"""Spot-check sampling: a reproducible random sample of one department's recorded calls.

`choose_sample` is pure (population, rate, seed -> sample); `recorded_calls` finds the
population: answered attempts of a department (and script) on one day with a call recording.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Sequence

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from core.enums import DialOutcome, RecordingKind
from core.store.models import CallAttempt, FollowupTask, Recording


def sample_size(population: int, rate: float) -> int:
    """ceil(rate x population), at least one call when there is any; rate in (0, 1]."""
    if not 0 < rate <= 1:
        raise ValueError("rate must be in (0, 1]")
    if population <= 0:
        return 0
    return max(1, min(population, math.ceil(rate * population - 1e-9)))


def choose_sample(population: Sequence[int], rate: float, seed: int) -> list[int]:
    """The same population, rate and seed always give the same sample (in population order)."""
    ordered = sorted(set(population))
    k = sample_size(len(ordered), rate)
    picked = set(random.Random(seed).sample(ordered, k))
    return [x for x in ordered if x in picked]


def recorded_calls(session: Session, department_id: int, start: dt.datetime,
                   end: dt.datetime, script_id: str | None = None) -> list[int]:
    """Ids of answered attempts in [start, end) with an unpurged call recording."""
    has_recording = exists().where(Recording.attempt_id == CallAttempt.id,
                                   Recording.kind == RecordingKind.CALL,
                                   Recording.purged_at.is_(None))
    stmt = (select(CallAttempt.id)
            .where(CallAttempt.department_id == department_id,
                   CallAttempt.created_at >= start, CallAttempt.created_at < end,
                   CallAttempt.dial_outcome == DialOutcome.ANSWERED, has_recording))
    if script_id is not None:
        stmt = stmt.join(FollowupTask, FollowupTask.id == CallAttempt.task_id).where(
            FollowupTask.script_id == script_id)
    return list(session.execute(stmt.order_by(CallAttempt.id)).scalars())
