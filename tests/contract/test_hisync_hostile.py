"""A hostile HIS extract, on SQLite and PostgreSQL stores: every row gets the same outcome on
both (stored, or quarantined with the field and reason), nothing stops the sync, the run log
keeps no other patient's data, and a second sync changes nothing.

The extract is written as CSV files (the format hospitals hand over most often) with the
synthetic HIS's columns (hisync/mappings/synthetic.yaml)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from core.clock import FakeClock
from core.enums import RejectReason, SyncRunStatus
from core.store.db import Database
from core.store.models import Encounter, HisReject, HisSyncRun, Patient
from hisync.mapping import DEFAULT_MAPPING, load_mapping
from hisync.sources import FileSource
from hisync.sync import HisSync, SyncOptions

MAPPING = load_mapping(DEFAULT_MAPPING)
WHEN = "2026-02-01 08:00:00"
PATIENT_COLUMNS = ["patient_id", "mrn", "patient_name", "sex_code", "birth_date", "phone",
                   "phone2", "lang", "deceased_flag", "refuse_followup", "updated_at"]
VISIT_COLUMNS = ["visit_no", "patient_id", "visit_type", "dept_code", "doctor", "admit_time",
                 "discharge_time", "diag_codes", "proc_codes", "discharge_way", "updated_at"]


def patient(pid: str, **over: str) -> dict[str, str]:
    row = {"patient_id": pid, "mrn": f"M{pid}", "patient_name": "王芳", "sex_code": "2",
           "birth_date": "1950-05-01", "phone": "13800138000", "phone2": "", "lang": "",
           "deceased_flag": "0", "refuse_followup": "0", "updated_at": WHEN}
    row.update(over)
    return row


def visit(vid: str, pid: str, **over: str) -> dict[str, str]:
    row = {"visit_no": vid, "patient_id": pid, "visit_type": "ZY", "dept_code": "0301",
           "doctor": "李明", "admit_time": "2026-01-20 08:00:00",
           "discharge_time": "2026-01-25 10:30:00", "diag_codes": "I21.0",
           "proc_codes": "", "discharge_way": "1", "updated_at": WHEN}
    row.update(over)
    return row


# (row, the outcome every store must give: None = stored, else (field, reason))
PATIENTS: list[tuple[dict[str, str], tuple[str, RejectReason] | None]] = [
    (patient("OK1"), None),
    (patient("LONGNAME", patient_name="张" * 601), ("name", RejectReason.TOO_LONG)),
    (patient("LONGMRN", mrn="9" * 100), ("mrn", RejectReason.TOO_LONG)),
    (patient("L" * 80), ("his_id", RejectReason.TOO_LONG)),
    (patient("MARKUP", patient_name="[red]王[/red] [/]"), None),  # odd, but a name: kept
    (patient("BIDI", patient_name="王\u202e芳"), ("name", RejectReason.INVALID_VALUE)),
    (patient("CTRL", patient_name="王\x1b[31m芳"), ("name", RejectReason.INVALID_VALUE)),
    (patient("FUTURE", birth_date="2031-01-01"), ("birth_date", RejectReason.IMPLAUSIBLE_DATE)),
    (patient("ANCIENT", birth_date="1850-01-01"),
     ("birth_date", RejectReason.IMPLAUSIBLE_DATE)),
    (patient("FULLWIDTH", phone="１３８００１３８０００"), None),
    (patient("REUSED", mrn="MOK1"), ("mrn", RejectReason.MRN_IN_USE)),
    (patient("TWICE", patient_name="王芳"), ("his_id", RejectReason.CONFLICTING_DUPLICATE)),
    (patient("TWICE", patient_name="李娜"), ("his_id", RejectReason.CONFLICTING_DUPLICATE)),
]
VISITS: list[tuple[dict[str, str], tuple[str, RejectReason] | None]] = [
    (visit("V-OK", "OK1"), None),
    (visit("V-FAR", "OK1", admit_time="2062-01-20 08:00:00", discharge_time=""),
     ("admit_at", RejectReason.IMPLAUSIBLE_DATE)),
    (visit("V-DOC", "OK1", doctor="医" * 200), ("attending_doctor", RejectReason.TOO_LONG)),
    (visit("V-NOPATIENT", "LONGNAME"), ("patient_his_id", RejectReason.UNKNOWN_PATIENT)),
]


def write_extract(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, columns, rows in (("his_patients", PATIENT_COLUMNS, PATIENTS),
                                ("his_encounters", VISIT_COLUMNS, VISITS)):
        with (folder / f"{name}.csv").open("w", newline="", encoding="utf-8") as f:
            out = csv.DictWriter(f, columns)
            out.writeheader()
            out.writerows(row for row, _ in rows)
    return folder


def outcomes(db: Database) -> dict[str, Any]:
    with db.session() as s:
        stored = set(s.scalars(select(Patient.his_id))) | set(s.scalars(select(Encounter.his_id)))
        rejects = {(r.row_key, r.field, r.reason)
                   for r in s.scalars(select(HisReject).where(HisReject.resolved_at.is_(None)))}
        names = {k: v for k, v in s.execute(select(Patient.his_id, Patient.name))}
        phones = {k: v for k, v in s.execute(select(Patient.his_id, Patient.phone))}
        runs = [(r.status, r.error) for r in s.scalars(select(HisSyncRun).order_by(HisSyncRun.id))]
    return {"stored": stored, "rejects": rejects, "names": names, "phones": phones,
            "runs": runs}


def sync(db: Database, folder: Path, clock: FakeClock) -> None:
    source = FileSource(folder)
    try:
        HisSync(db, source, MAPPING, clock, SyncOptions(batch_size=4)).run()
    finally:
        source.close()


def test_a_hostile_extract_is_sorted_row_by_row_the_same_on_every_store(
        db: Database, clock: FakeClock, tmp_path: Path) -> None:
    folder = write_extract(tmp_path / "extract")
    sync(db, folder, clock)
    got = outcomes(db)
    for row, expected in [*PATIENTS, *VISITS]:
        key = row.get("visit_no") or row["patient_id"]
        if expected is None:
            assert key in got["stored"], key
        else:
            field, reason = expected
            assert key not in got["stored"], key
            assert (key, field, reason) in got["rejects"], (key, got["rejects"])
    assert got["names"]["MARKUP"] == "[red]王[/red] [/]"  # stored verbatim
    assert got["phones"]["FULLWIDTH"] == "+8613800138000"
    assert [status for status, _ in got["runs"]] == [SyncRunStatus.COMPLETED]

    sync(db, folder, clock)  # the same extract again: nothing changes
    again = outcomes(db)
    assert {k: again[k] for k in ("stored", "rejects", "names")} == \
        {k: got[k] for k in ("stored", "rejects", "names")}
    assert [status for status, _ in again["runs"]] == [SyncRunStatus.COMPLETED] * 2


def test_a_configured_source_id_keeps_the_quarantine_when_the_extract_moves(
        db: Database, clock: FakeClock, tmp_path: Path) -> None:
    """The same extract synced from another folder was a new source: fixed rows' rejects
    stayed open and every bad row was quarantined again."""
    def run(folder: Path, source_id: str) -> None:
        source = FileSource(folder)
        try:
            HisSync(db, source, MAPPING, clock, SyncOptions(batch_size=4),
                    source_id=source_id).run()
        finally:
            source.close()

    run(write_extract(tmp_path / "monday"), "his-main")
    with db.session() as s:
        first = len(s.scalars(select(HisReject)).all())
    moved = write_extract(tmp_path / "tuesday")
    with (moved / "his_patients.csv").open("a", encoding="utf-8") as f:  # LONGNAME fixed
        f.write(",".join(patient("LONGNAME", updated_at="2026-02-02 08:00:00").values())
                + "\n")
    run(moved, "his-main")
    with db.session() as s:
        rows = s.scalars(select(HisReject)).all()
        assert len(rows) == first  # nothing quarantined twice
        assert {r.source for r in rows} == {"his-main"}
        fixed = [r for r in rows if r.row_key == "LONGNAME"]
        assert fixed and all(r.resolved_at is not None for r in fixed)


def test_a_row_the_store_refuses_is_quarantined_and_the_batch_goes_on(
        db: Database, clock: FakeClock, tmp_path: Path) -> None:
    """A DBA narrowed a column (or the HIS sends what the parser lets through and the store
    refuses): that row alone is quarantined with the driver's reason, the rest are stored,
    and the run completes."""
    if db.dialect != "postgresql":
        pytest.skip("SQLite keeps any length; the net under the parser is for PostgreSQL")
    with db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE patients ALTER COLUMN name TYPE varchar(4)"))
    folder = write_extract(tmp_path / "extract")
    with (folder / "his_patients.csv").open("a", encoding="utf-8") as f:
        f.write(",".join(patient("WIDE", patient_name="王小明同学").values()) + "\n")
    sync(db, folder, clock)
    got = outcomes(db)
    assert "WIDE" not in got["stored"] and "OK1" in got["stored"]
    assert ("WIDE", "his_id", RejectReason.STORE_REFUSED) in got["rejects"]
    assert [status for status, _ in got["runs"]] == [SyncRunStatus.COMPLETED]
