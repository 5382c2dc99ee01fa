"""The SQLite fast path stores exactly what SQLAlchemy stores for the same record."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, text

from core.clock import FakeClock
from core.store.db import Database
from core.store.models import Department, Encounter, Patient
from hisync.encoding import ENCOUNTER_COLUMNS, PATIENT_COLUMNS
from hisync.mapping import DEFAULT_MAPPING, load_mapping
from hisync.records import Accepted, summarize
from hisync.rows import ParserConfig, RowParser
from hisync.store_writer import StoreWriter
from tests.unit.hisync.test_rows import encounter_row, patient_row

MAPPING = load_mapping(DEFAULT_MAPPING)


def _raw_rows(db: Database, table: str, his_id: str) -> tuple[object, ...]:
    with db.engine.connect() as conn:
        row = conn.execute(text(f"SELECT * FROM {table} WHERE his_id = :h"), {"h": his_id}).one()
    return tuple(v for k, v in row._mapping.items()
                 if k not in ("id", "his_id", "mrn", "content_hash"))


def test_fast_encoding_is_byte_identical_to_sqlalchemy(sqlite_db: Database,
                                                       clock: FakeClock) -> None:
    now = clock.now()
    config = ParserConfig(MAPPING, encoding="generic")
    pat = RowParser(config, "patients").parse_row(patient_row(phone2="010-62345678"))
    enc = RowParser(config, "encounters").parse_row(encounter_row())
    assert isinstance(pat, Accepted) and isinstance(enc, Accepted)
    # Through SQLAlchemy Core with typed values ...
    with sqlite_db.engine.begin() as conn:
        conn.execute(insert(Department).values(code="CARD", name="心内科", name_en="Cardiology"))
        conn.execute(insert(Patient).values(
            his_id="CORE", **dict(zip(PATIENT_COLUMNS[1:], pat.values[1:], strict=True)),
            content_hash=pat.content_hash, plan_dirty=True, updated_at=now))
        conn.execute(insert(Encounter).values(
            his_id="CORE", patient_id=1, department_id=1,
            **dict(zip(ENCOUNTER_COLUMNS[1:], enc.values[1:], strict=True)),
            content_hash=enc.content_hash, plan_dirty=True, updated_at=now))
    # ... and through the writer's DBAPI fast path with pre-encoded values.
    fast = ParserConfig(MAPPING, encoding="sqlite")
    writer = StoreWriter(sqlite_db, "test")
    writer.ensure_departments(MAPPING.departments.values())
    run = writer.begin_run(now)
    cols = MAPPING.patients.source_columns
    prow = patient_row(patient_id="FAST", mrn="M2", phone2="010-62345678")  # its own MRN
    writer.write_batch("patients", cols, [prow],
                       summarize(RowParser(fast, "patients").parse_batch([prow])), None, run, now)
    erow = encounter_row(visit_no="FAST", patient_id="CORE")
    writer.write_batch("encounters", MAPPING.encounters.source_columns, [erow],
                       summarize(RowParser(fast, "encounters").parse_batch([erow])), None, run,
                       now)
    assert _raw_rows(sqlite_db, "patients", "CORE") == _raw_rows(sqlite_db, "patients", "FAST")
    assert _raw_rows(sqlite_db, "encounters", "CORE") == _raw_rows(sqlite_db, "encounters",
                                                                   "FAST")
    assert isinstance(now, dt.datetime)
