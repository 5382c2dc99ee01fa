"""Shared fixtures.

`db` is parametrized over the store backends: SQLite always, PostgreSQL when
`FOLLOWUP_TEST_PG_URL` names a server (`.ci/run` starts one). A missing PostgreSQL is a
visible skip with the reason, never a silent pass.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from core.clock import FakeClock
from core.store.db import Database
from tests.pg_scratch import scratch_database
from tests.smsc import Smsc, running_smsc, smsc_unavailable

REPO = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("FOLLOWUP_TEST_PG_URL", "")
PG_REQUIRED = os.environ.get("FOLLOWUP_TEST_REQUIRE_PG", "") == "1"
SMSC_REQUIRED = os.environ.get("FOLLOWUP_TEST_REQUIRE_SMSC", "") == "1"


def pytest_report_header(config: pytest.Config) -> list[str]:
    if PG_URL:
        return [f"PostgreSQL contract tests: ON ({make_url(PG_URL).render_as_string()})"]
    return ["PostgreSQL contract tests: SKIPPED (set FOLLOWUP_TEST_PG_URL to run them)"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(dt.datetime(2026, 3, 10, 1, 0, tzinfo=dt.UTC))


def _pg_database() -> Iterator[Database]:
    if not PG_URL:
        if PG_REQUIRED:
            pytest.fail("FOLLOWUP_TEST_REQUIRE_PG=1 but FOLLOWUP_TEST_PG_URL is not set")
        pytest.skip("PostgreSQL not configured: set FOLLOWUP_TEST_PG_URL (e.g. "
                    "postgresql://followup:followup@127.0.0.1/followup_test)")
    with scratch_database(PG_URL, "t") as url:
        db = Database(url)
        try:
            yield db
        finally:
            db.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL on each backend (not migrated)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.sqlite'}"
        return
    gen = _pg_database()
    db = next(gen)
    yield db.url
    db.dispose()
    with pytest.raises(StopIteration):
        next(gen)


@pytest.fixture
def db(db_url_factory: str) -> Iterator[Database]:
    """A migrated store on each backend."""
    database = Database(db_url_factory)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite store (for tests that need only the default backend)."""
    database = Database(f"sqlite:///{tmp_path / 'store.sqlite'}")
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def smsc() -> Iterator[Smsc]:
    """The real SMPP server (smpp.twisted3, tests/smsc), one for the session; skipped with
    the reason when it cannot start (a failure when FOLLOWUP_TEST_REQUIRE_SMSC=1)."""
    reason = smsc_unavailable()
    if reason is not None:
        if SMSC_REQUIRED:
            pytest.fail(f"FOLLOWUP_TEST_REQUIRE_SMSC=1 but {reason}")
        pytest.skip(reason)
    with running_smsc() as server:
        yield server


_TIERS = (("postgres", "PostgreSQL"), ("asterisk", "real Asterisk"),
          ("browser", "headless Chromium"), ("smsc", "SMPP server (smpp.twisted3)"))
_TIER_IDS: dict[str, set[str]] = {marker: set() for marker, _ in _TIERS}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for marker, _ in _TIERS:
            if item.get_closest_marker(marker) is not None:
                _TIER_IDS[marker].add(item.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    """Say plainly which real-service tiers ran (printed even with -q)."""
    stats = terminalreporter.stats

    def count(kinds: tuple[str, ...], marker: str) -> int:
        return sum(1 for kind in kinds for r in stats.get(kind, [])
                   if getattr(r, "nodeid", None) in _TIER_IDS[marker]
                   and getattr(r, "when", "call") in ("call", "setup"))

    for marker, name in _TIERS:
        ran = count(("passed", "failed"), marker)
        skipped = count(("skipped",), marker)
        terminalreporter.write_line(f"{name} tier: {ran} tests ran, {skipped} skipped")
