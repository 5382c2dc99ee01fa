"""The monthly report's figures: exact counts, means and intervals, suppression, snapshots."""

from __future__ import annotations

import datetime as dt
import math
import statistics
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from console.access import ROLE_PERMISSIONS, Principal
from console.reports import MIN_CELL, ReportService, mean_ci, month_figures, t95, wilson
from core.audit import AuditLog
from core.clock import FakeClock
from core.enums import Role
from core.errors import NotFound
from core.store.db import Database
from core.store.models import Answer, ReportSnapshot
from recordings.store import RecordingStore
from tests.audit_key import TEST_AUDIT_KEY
from tests.unit.console.seed import Seeded, seed

TZ = "Asia/Shanghai"


def _principal(depts: frozenset[int] | None) -> Principal:
    return Principal(1, "u", "u", Role.DEPT_MANAGER, frozenset({Role.DEPT_MANAGER}),
                     {p: depts for p in ROLE_PERMISSIONS[Role.DEPT_MANAGER]}, depts)


@given(st.lists(st.integers(1, 5), min_size=2, max_size=200))
def test_mean_ci_matches_the_textbook_formula(values: list[int]) -> None:
    n = len(values)
    mean, lo, hi = mean_ci(n, float(sum(values)), float(sum(v * v for v in values)))
    assert mean == pytest.approx(statistics.fmean(values))
    half = t95(n - 1) * statistics.stdev(values) / math.sqrt(n)
    assert lo == pytest.approx(mean - half, abs=1e-9)
    assert hi == pytest.approx(mean + half, abs=1e-9)


def test_t_quantiles_and_wilson_interval() -> None:
    assert t95(1) == 12.706 and t95(4) == 2.776 and t95(11) == 2.228 and t95(1000) == 1.96
    assert all(t95(d) >= t95(d + 1) for d in range(1, 200))
    p, lo, hi = wilson(8, 10)
    assert p == 0.8 and lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433,
                                                                                      abs=1e-4)
    assert wilson(0, 5)[1] == 0.0 and wilson(5, 5)[2] == 1.0


@pytest.fixture
def seeded(sqlite_db: Database, clock: FakeClock, tmp_path: Path) -> Seeded:
    audit = AuditLog(clock, TEST_AUDIT_KEY)
    return seed(sqlite_db, clock, RecordingStore(tmp_path / "r", clock, audit))


def test_month_figures_count_exactly_and_suppress_small_cells(sqlite_db: Database,
                                                              seeded: Seeded) -> None:
    with sqlite_db.session() as s:
        figures, stats = month_figures(s, seeded.card_id, dt.date(2026, 3, 1), TZ)
    # six satisfaction tasks (five done, one failed) + the walk-through call (done)
    assert (figures.eligible, figures.responded, figures.failed) == (7, 6, 1)
    assert figures.response_rate == pytest.approx(6 / 7)
    by_key = {q.key: q for q in stats}
    overall = by_key["inpatient-satisfaction/overall"]
    # scores this month: base 4, +1 when (i + len("overall")) is odd, i = 0..4
    expected = [4 + (1 if (i + 7) % 2 else 0) for i in range(5)]
    assert overall.n == 5 and overall.mean == pytest.approx(statistics.fmean(expected))
    assert by_key["inpatient-satisfaction/food"].n == 2
    assert by_key["inpatient-satisfaction/food"].suppressed
    recommend = by_key["inpatient-satisfaction/recommend"]
    assert recommend.kind == "yes_no" and recommend.mean == pytest.approx(3 / 5)
    # the walk-through call's yes/no answers: two, so suppressed rather than shown
    assert by_key["cardiology-post-discharge/chest_pain"].suppressed


def test_report_trend_uses_snapshots_for_finished_months(sqlite_db: Database,
                                                         clock: FakeClock,
                                                         seeded: Seeded) -> None:
    svc = ReportService(clock, TZ)
    who = _principal(frozenset({seeded.card_id}))
    with sqlite_db.session() as s:
        first = svc.monthly(s, who, seeded.card_id, dt.date(2026, 3, 1))
    assert [m.month for m in first.trend] == [
        *(f"2025-{m:02d}" for m in range(4, 13)), "2026-01", "2026-02", "2026-03"]
    feb = first.trend[-2]
    assert feb.eligible == 6 and feb.response_rate is not None
    with sqlite_db.session() as s:
        assert s.execute(select(func.count()).select_from(ReportSnapshot)).scalar_one() == 11
        # change February's raw answers: the finished month keeps its snapshot figures
        for a in s.execute(select(Answer).where(Answer.created_at < dt.datetime(
                2026, 2, 28, tzinfo=dt.UTC), Answer.created_at >= dt.datetime(
                2026, 2, 1, tzinfo=dt.UTC))).scalars():
            a.value = "1" if a.kind.value == "scale" else a.value
    with sqlite_db.session() as s:
        again = svc.monthly(s, who, seeded.card_id, dt.date(2026, 3, 1))
    assert again.trend[-2] == feb
    assert again.figures == first.figures
    assert [q.key for q in again.worst] == [q.key for q in first.worst]
    assert all(not q.suppressed for q in again.worst)
    assert again.worst[0].mean == min(q.mean for q in again.questions
                                      if q.mean is not None and q.kind == "scale")


def test_report_outside_scope_is_not_found(sqlite_db: Database, clock: FakeClock,
                                           seeded: Seeded) -> None:
    svc = ReportService(clock, TZ)
    with sqlite_db.session() as s, pytest.raises(NotFound):
        svc.monthly(s, _principal(frozenset({seeded.card_id})), seeded.onc_id,
                    dt.date(2026, 3, 1))


def test_small_department_shows_no_rate(sqlite_db: Database, clock: FakeClock,
                                        seeded: Seeded) -> None:
    with sqlite_db.session() as s:
        figures, _ = month_figures(s, seeded.onc_id, dt.date(2026, 3, 1), TZ)
    assert figures.eligible == 1 < MIN_CELL
    assert figures.response_rate is None
