"""MariaDB as a real HIS (the database many hospital systems run on): the hostile extract of
`test_hisync_hostile`, loaded into MariaDB tables read through typed views with a DATETIME
watermark, gives the same outcome per row as the CSV extract, on SQLite and PostgreSQL
stores; a second sync changes nothing; a wrong password is a permanent error.

Needs `FOLLOWUP_TEST_MARIADB_URL` (`.ci/run` starts MariaDB from Debian and sets it), e.g.
mysql+pymysql://his:his@127.0.0.1/his_test; skipped with that reason otherwise."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from core.clock import FakeClock
from core.errors import SourceError, SourceUnavailable
from core.store.db import Database
from hisync.mapping import DEFAULT_MAPPING, load_mapping
from hisync.sources import SqlSource
from hisync.sync import HisSync, SyncOptions
from tests.contract.test_hisync_hostile import (
    PATIENT_COLUMNS,
    PATIENTS,
    VISIT_COLUMNS,
    VISITS,
    outcomes,
    sync,
    write_extract,
)

URL = os.environ.get("FOLLOWUP_TEST_MARIADB_URL", "")
needs_mariadb = pytest.mark.skipif(
    not URL, reason="no MariaDB HIS: set FOLLOWUP_TEST_MARIADB_URL (.ci/run starts one)")

DATETIMES = {"updated_at", "admit_time", "discharge_time"}


@pytest.fixture
def mariadb_his(tmp_path: Path) -> Iterator[Path]:
    """The extract in MariaDB (raw tables, typed views over them); yields the mapping that
    reads the views."""
    engine = create_engine(URL)
    with engine.begin() as conn:
        for name, columns, rows in (("his_patients", PATIENT_COLUMNS, PATIENTS),
                                    ("his_encounters", VISIT_COLUMNS, VISITS)):
            conn.execute(text(f"DROP VIEW IF EXISTS v_{name}"))
            conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
            cols = ", ".join(f"{c} DATETIME NULL" if c in DATETIMES
                             else f"{c} VARCHAR(700) NULL" for c in columns)
            conn.execute(text(f"CREATE TABLE {name} ({cols}) CHARACTER SET utf8mb4"))
            marks = ", ".join(f":{c}" for c in columns)
            conn.execute(text(f"INSERT INTO {name} VALUES ({marks})"),
                         [{c: (row[c] or None) for c in columns} for row, _ in rows])
            conn.execute(text(f"CREATE VIEW v_{name} AS SELECT * FROM {name}"))
    mapping = DEFAULT_MAPPING.read_text(encoding="utf-8")
    for name in ("his_patients", "his_encounters"):
        mapping = mapping.replace(f"table: {name}", f"table: v_{name}")
    path = tmp_path / "mariadb.yaml"
    path.write_text(mapping, encoding="utf-8")
    yield path
    engine.dispose()


@needs_mariadb
def test_mariadb_gives_each_row_the_same_outcome_as_the_csv_extract(
        db: Database, clock: FakeClock, tmp_path: Path, mariadb_his: Path) -> None:
    reference = Database(f"sqlite:///{tmp_path / 'ref.sqlite'}")
    reference.migrate()
    try:
        sync(reference, write_extract(tmp_path / "csv"), clock)
        expected = outcomes(reference)
    finally:
        reference.dispose()
    mapping = load_mapping(mariadb_his)
    for _ in range(2):  # the second run changes nothing
        source = SqlSource(URL)
        try:
            HisSync(db, source, mapping, clock, SyncOptions(batch_size=4)).run()
        finally:
            source.close()
        got = outcomes(db)
        assert {k: got[k] for k in ("stored", "rejects", "names", "phones")} == \
            {k: expected[k] for k in ("stored", "rejects", "names", "phones")}


@needs_mariadb
def test_a_wrong_password_is_permanent_and_says_so(mariadb_his: Path) -> None:
    wrong = make_url(URL).set(password="not-the-password")
    source = SqlSource(wrong.render_as_string(hide_password=False))
    try:
        with pytest.raises(SourceError) as caught:
            source.count(load_mapping(mariadb_his).entity("patients"), None)
    finally:
        source.close()
    assert not isinstance(caught.value, SourceUnavailable)
    assert "Access denied" in caught.value.message
    assert "not-the-password" not in caught.value.message


@pytest.mark.parametrize("url", [
    "mysql+pymysql://his_reader:secret@his-db.example/his",
    "mssql+pymssql://his_reader:secret@his-db.example:1433/HIS",
    "oracle+oracledb://his_reader:secret@his-db.example:1521/?service_name=HIS",
])
def test_the_drivers_for_the_databases_hospitals_have_load(url: str) -> None:
    """SQL Server and Oracle: no server here, so the driver is loaded and the URL checked
    (SqlSource builds its engine without connecting); the password never shows."""
    source = SqlSource(url)
    try:
        assert "secret" not in source.name
        source._get_engine()
    finally:
        source.close()
