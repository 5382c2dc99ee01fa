"""Spot-check sampling: reproducible, the promised size, only recorded answered calls."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.audit import AuditLog
from core.clock import FakeClock
from core.enums import DialOutcome
from core.store.db import Database
from core.store.models import CallAttempt, Recording
from recordings.sampling import choose_sample, recorded_calls, sample_size
from recordings.store import RecordingStore
from tests.audit_key import TEST_AUDIT_KEY
from tests.unit.console.seed import seed


@given(st.lists(st.integers(1, 10_000), max_size=300), st.integers(1, 100),
       st.integers(0, 2**48))
def test_sample_is_a_reproducible_subset_of_the_promised_size(pop: list[int], percent: int,
                                                              seed_: int) -> None:
    rate = percent / 100
    chosen = choose_sample(pop, rate, seed_)
    assert chosen == choose_sample(list(reversed(pop)), rate, seed_)
    assert set(chosen) <= set(pop) and chosen == sorted(set(chosen))
    n = len(set(pop))
    assert len(chosen) == (0 if n == 0 else max(1, math.ceil(rate * n - 1e-9)))


def test_sample_size_edges() -> None:
    assert sample_size(0, 0.5) == 0
    assert sample_size(1, 0.01) == 1
    assert sample_size(200, 0.05) == 10
    assert sample_size(7, 1.0) == 7
    for bad in (0.0, -0.1, 1.01):
        with pytest.raises(ValueError):
            sample_size(10, bad)


def test_different_seeds_draw_different_samples() -> None:
    pop = list(range(1000))
    assert choose_sample(pop, 0.05, 1) != choose_sample(pop, 0.05, 2)


def test_recorded_calls_are_answered_with_a_live_recording(sqlite_db: Database,
                                                            clock: FakeClock,
                                                            tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / "rec", clock, AuditLog(clock, TEST_AUDIT_KEY))
    sd = seed(sqlite_db, clock, store)
    day_start = dt.datetime(2026, 3, 9, 16, 0, tzinfo=dt.UTC)  # 2026-03-10 in Shanghai
    day_end = day_start + dt.timedelta(days=1)
    with sqlite_db.session() as s:
        assert recorded_calls(s, sd.card_id, day_start, day_end) == [sd.card_call]
        assert recorded_calls(s, sd.onc_id, day_start, day_end) == [sd.onc_call]
        assert recorded_calls(s, sd.card_id, day_start, day_end, "inpatient-satisfaction") == []
        assert recorded_calls(s, sd.card_id, day_start, day_end,
                              "cardiology-post-discharge") == [sd.card_call]
        assert recorded_calls(s, sd.card_id, day_end, day_end + dt.timedelta(days=1)) == []
        s.get(CallAttempt, sd.card_call).dial_outcome = DialOutcome.BUSY
        s.flush()
        assert recorded_calls(s, sd.card_id, day_start, day_end) == []
        s.get(CallAttempt, sd.card_call).dial_outcome = DialOutcome.ANSWERED
        s.get(Recording, sd.card_recording).purged_at = clock.now()
        s.flush()
        assert recorded_calls(s, sd.card_id, day_start, day_end) == []
