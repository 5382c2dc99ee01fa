"""A PostgreSQL HIS with typed columns: resuming compares watermarks as timestamps."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from core.clock import FakeClock
from core.store.db import Database
from hisync.sources import SqlSource
from hisync.synthetic import ENCOUNTER_COLUMNS, PATIENT_COLUMNS, generate_his
from hisync.testing import FlakySource
from tests.contract.test_hisync import dump, sync


def test_typed_postgresql_his_resumes_and_matches_the_sqlite_his(
        db: Database, clock: FakeClock, tmp_path: Path) -> None:
    if db.dialect != "postgresql":
        pytest.skip("this contract is about a PostgreSQL HIS; the store fixture is SQLite here")
    his = tmp_path / "his.sqlite"
    generate_his(his, patients=150)
    lite = sqlite3.connect(his)
    with db.engine.begin() as conn:  # the HIS tables live beside the store's, typed
        for table, cols in (("his_patients", PATIENT_COLUMNS),
                            ("his_encounters", ENCOUNTER_COLUMNS)):
            ddl = ", ".join(f"{c} {'timestamp' if c == 'updated_at' else 'text'}"
                            for c in cols)
            conn.execute(text(f"CREATE TABLE {table} ({ddl})"))
            rows = lite.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall()
            marks = ", ".join(f":{c}" for c in cols)
            conn.execute(text(f"INSERT INTO {table} VALUES ({marks})"),
                         [dict(zip(cols, r, strict=True)) for r in rows])
    lite.close()
    # Down after 2 batches: the retry reopens the query at a (timestamp, key) mark.
    flaky = FlakySource(SqlSource(db.url), failures=1, after_batches=2)
    report = sync(db, flaky, clock, batch_size=40)
    assert report.retries == 1 and flaky.opened >= 3
    reference = Database(f"sqlite:///{tmp_path / 'ref.sqlite'}")
    reference.migrate()
    try:
        sync(reference, SqlSource(f"sqlite:///{his}"), clock)
        assert dump(db) == dump(reference)
    finally:
        reference.dispose()
