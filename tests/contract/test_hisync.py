"""HIS sync contract, on SQLite and PostgreSQL: the synthetic HIS syncs, every broken row is
quarantined with its reason, a re-run changes nothing, changes are applied and flagged for
re-planning, a CSV export gives the same store, and a flaky source is retried."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text, update

from core.clock import FakeClock
from core.enums import EncounterType, RejectReason, SyncRunStatus
from core.errors import SourceUnavailable
from core.store.db import Database
from core.store.models import Department, Encounter, HisReject, HisSyncRun, Patient
from hisync.mapping import DEFAULT_MAPPING, load_mapping
from hisync.sources import FileSource, Source, SqlSource
from hisync.sync import HisSync, SyncOptions, SyncReport
from hisync.synthetic import Manifest, export_csv, generate_his
from hisync.testing import FlakySource

MAPPING = load_mapping(DEFAULT_MAPPING)


@pytest.fixture(scope="module")
def his(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Manifest]:
    path = tmp_path_factory.mktemp("his") / "his.sqlite"
    return path, generate_his(path, patients=400)


def sync(db: Database, source: Source, clock: FakeClock, sleeps: list[float] | None = None,
         **options: Any) -> SyncReport:
    options.setdefault("batch_size", 64)
    waits = sleeps if sleeps is not None else []
    try:
        return HisSync(db, source, MAPPING, clock, SyncOptions(**options),
                       sleep=waits.append).run()
    finally:
        source.close()


def dump(db: Database, with_times: bool = False) -> dict[str, list[tuple[Any, ...]]]:
    """The store's HIS content, without surrogate ids, run ids (and times unless asked)."""
    skip = {"id", "patient_id", "department_id"} | (set() if with_times else {"updated_at"})
    out: dict[str, list[tuple[Any, ...]]] = {}
    with db.session() as s:
        pcols = [c for c in Patient.__table__.columns if c.name not in skip]
        out["patients"] = [tuple(r) for r in s.execute(select(*pcols).order_by(Patient.his_id))]
        ecols = [c for c in Encounter.__table__.columns if c.name not in skip]
        out["encounters"] = [tuple(r) for r in s.execute(
            select(*ecols, Patient.his_id, Department.code)
            .join(Patient, Patient.id == Encounter.patient_id)
            .join(Department, Department.id == Encounter.department_id)
            .order_by(Encounter.his_id))]
        out["rejects"] = [tuple(r) for r in s.execute(
            select(HisReject.entity, HisReject.row_key, HisReject.raw_hash, HisReject.field,
                   HisReject.reason, HisReject.detail, HisReject.raw)
            .order_by(HisReject.entity, HisReject.row_key, HisReject.raw_hash))]
    return out


def test_synthetic_his_syncs_and_every_broken_row_is_quarantined(
        db: Database, his: tuple[Path, Manifest], clock: FakeClock) -> None:
    path, manifest = his
    report = sync(db, SqlSource(f"sqlite:///{path}"), clock)
    t = report.totals
    assert report.status is SyncRunStatus.COMPLETED
    assert t.read == manifest.total_rows
    assert t.read == t.inserted + t.updated + t.unchanged + t.rejected
    assert t.rejected == sum(b.rows for b in manifest.broken)
    # At least 2% of each entity's rows broken for each kind, as the issue asks.
    for entity, rows, kinds in [
        ("patients", manifest.patient_rows, [RejectReason.UNPARSEABLE_DATE,
         RejectReason.INVALID_PHONE, RejectReason.MISSING_FIELD,
         RejectReason.CONFLICTING_DUPLICATE]),
        ("encounters", manifest.encounter_rows, [RejectReason.UNPARSEABLE_DATE,
         RejectReason.UNKNOWN_DEPARTMENT, RejectReason.MISSING_FIELD,
         RejectReason.CONFLICTING_DUPLICATE])]:
        for kind in kinds:
            assert manifest.count(entity, kind) >= 0.02 * rows, (entity, kind)
    with db.session() as s:
        found: dict[tuple[str, str], list[tuple[RejectReason, str]]] = defaultdict(list)
        for r in s.execute(select(HisReject)).scalars():
            found[(r.entity, r.row_key)].append((r.reason, r.field))
            assert r.raw and r.detail and r.run_id == report.run_id
        expected = {(b.entity, b.row_key): [(b.reason, b.field)] * b.rows
                    for b in manifest.broken}
        assert dict(found) == expected  # every broken row, with its reason; nothing else
        assert s.execute(select(Patient).where(Patient.plan_dirty.is_(False))).first() is None
        n_pat = s.execute(text("SELECT count(*) FROM patients")).scalar_one()
        assert n_pat == manifest.patient_rows - sum(
            b.rows for b in manifest.broken if b.entity == "patients")
        run = s.get(HisSyncRun, report.run_id)
        assert run is not None and run.status is SyncRunStatus.COMPLETED
        assert (run.rows_read, run.inserted, run.rejected) == (t.read, t.inserted, t.rejected)
        # The data is what a follow-up needs: E.164 phones, open stays, the deceased.
        phones = s.execute(select(Patient.phone)).scalars().all()
        assert all(p and p.startswith("+") for p in phones)
        assert any(p.startswith("+1") or p.startswith("+82") for p in phones)
        assert s.execute(select(Encounter).where(Encounter.type == EncounterType.INPATIENT,
                                                 Encounter.discharge_at.is_(None))).first()
        assert s.execute(select(Patient).where(Patient.deceased.is_(True))).first()
        assert s.execute(select(Patient).where(Patient.opt_out_phone.is_(True))).first()
        assert s.execute(text("SELECT count(*) FROM departments")).scalar_one() >= 5


def test_second_sync_changes_nothing(db: Database, his: tuple[Path, Manifest],
                                     clock: FakeClock) -> None:
    path, _ = his
    source = SqlSource(f"sqlite:///{path}")
    first = sync(db, source, clock)
    before = dump(db, with_times=True)
    clock.advance(dt.timedelta(hours=1))
    again = sync(db, source, clock)
    with sqlite3.connect(path) as his_db:  # the rows AT each watermark are read again
        at_marks = sum(his_db.execute(
            f"SELECT count(*) FROM {t} WHERE updated_at = (SELECT max(updated_at) FROM {t})"
        ).fetchone()[0] for t in ("his_patients", "his_encounters"))
    assert again.totals.read == at_marks
    assert (again.totals.inserted, again.totals.updated) == (0, 0)
    full = sync(db, source, clock, full=True, batch_size=1000)
    assert full.totals.read == first.totals.read
    assert (full.totals.inserted, full.totals.updated) == (0, 0)
    assert full.totals.rejected == first.totals.rejected
    assert dump(db, with_times=True) == before  # not even updated_at moved


def test_a_changed_row_is_updated_and_flagged_for_planning(
        db: Database, his: tuple[Path, Manifest], clock: FakeClock, tmp_path: Path) -> None:
    path = tmp_path / "his.sqlite"
    shutil.copy(his[0], path)
    manifest = his[1]
    sync(db, SqlSource(f"sqlite:///{path}"), clock)
    with db.session() as s:  # the planner has planned everything
        s.execute(update(Patient).values(plan_dirty=False))
        s.execute(update(Encounter).values(plan_dirty=False))
    before = dump(db, with_times=True)
    bad_dept = next(b.row_key for b in manifest.broken
                    if b.reason is RejectReason.UNKNOWN_DEPARTMENT)
    conn = sqlite3.connect(path)
    with conn:
        pid, = conn.execute("SELECT patient_id FROM his_patients WHERE patient_id IN "
                            "(SELECT patient_id FROM his_encounters) LIMIT 1").fetchone()
        conn.execute("UPDATE his_patients SET phone = '13912345678', "
                     "updated_at = '2030-01-01 00:00:00' WHERE patient_id = ?", (pid,))
        conn.execute("UPDATE his_encounters SET dept_code = '0301', "
                     "updated_at = '2030-01-01 00:00:00' WHERE visit_no = ?", (bad_dept,))
        # touched (newer watermark) but not changed: must not be written
        conn.execute("UPDATE his_encounters SET updated_at = '2030-01-01 00:00:01' "
                     "WHERE patient_id = ? AND visit_no != ?", (pid, bad_dept))
    conn.close()
    clock.advance(dt.timedelta(days=1))
    report = sync(db, SqlSource(f"sqlite:///{path}"), clock)
    patients = report.entities["patients"]  # the changed row, and the one at the old mark
    assert (patients.updated, patients.inserted, patients.read) == (1, 0, 2)
    assert report.entities["encounters"].inserted == 1  # the fixed reject
    assert report.entities["encounters"].updated == 0
    after = dump(db, with_times=True)
    with db.session() as s:
        dirty = s.execute(select(Patient.his_id, Patient.phone, Patient.updated_at)
                          .where(Patient.plan_dirty.is_(True))).all()
        assert [(d[0], d[1]) for d in dirty] == [(pid, "+8613912345678")]
        assert dirty[0][2] == clock.now()
        dirty_enc = s.execute(select(Encounter.his_id).where(Encounter.plan_dirty.is_(True)))
        assert dirty_enc.scalars().all() == [bad_dept]
        fixed = s.execute(select(HisReject).where(HisReject.row_key == bad_dept)).scalar_one()
        assert fixed.resolved_at == clock.now()  # the quarantine shows it fixed
        still_open = s.execute(select(HisReject).where(HisReject.resolved_at.is_(None)))
        assert len(still_open.scalars().all()) == sum(b.rows for b in manifest.broken) - 1
    changed = [a for a, b in zip(after["patients"], before["patients"], strict=True) if a != b]
    assert len(changed) == 1 and changed[0][0] == pid


def test_an_opt_out_or_death_recorded_here_survives_a_later_his_change(
        db: Database, his: tuple[Path, Manifest], clock: FakeClock, tmp_path: Path) -> None:
    path = tmp_path / "his.sqlite"
    shutil.copy(his[0], path)
    sync(db, SqlSource(f"sqlite:///{path}"), clock)
    conn = sqlite3.connect(path)
    with conn:
        a, b = (r[0] for r in conn.execute(
            "SELECT patient_id FROM his_patients WHERE refuse_followup = '0' "
            "AND (deceased_flag IS NULL OR deceased_flag = '0') LIMIT 2"))
        conn.execute("UPDATE his_patients SET phone = '13912345678', "
                     "updated_at = '2030-01-01 00:00:00' WHERE patient_id IN (?, ?)", (a, b))
    conn.close()
    with db.session() as s:  # a call's opt-out for one, a nurse's death record for the other
        s.execute(update(Patient).where(Patient.his_id == a).values(opt_out_phone=True))
        s.execute(update(Patient).where(Patient.his_id == b).values(deceased=True))
    clock.advance(dt.timedelta(days=1))
    sync(db, SqlSource(f"sqlite:///{path}"), clock)
    with db.session() as s:
        rows = {r.his_id: r for r in s.execute(select(
            Patient.his_id, Patient.phone, Patient.opt_out_phone, Patient.deceased).where(
            Patient.his_id.in_([a, b])))}
    assert rows[a].phone == rows[b].phone == "+8613912345678"  # the HIS's change applied
    assert rows[a].opt_out_phone is True and rows[b].deceased is True  # and ours kept


def test_late_rows_with_the_watermark_time_and_lower_keys_are_synced(
        db: Database, clock: FakeClock, tmp_path: Path) -> None:
    """HIS exports stamp whole batches with one time: rows that arrive after a sync with
    the same `updated_at` as its watermark and keys below the last one read must not be
    skipped."""
    path = tmp_path / "his.sqlite"
    generate_his(path, patients=30)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE his_patients SET updated_at = '2026-02-01 08:00:00'")
        conn.execute("UPDATE his_encounters SET updated_at = '2026-02-01 08:00:00'")
        late = conn.execute("SELECT * FROM his_patients WHERE patient_id IN "
                            "(SELECT min(patient_id) FROM his_patients)").fetchone()
        conn.execute("DELETE FROM his_encounters WHERE patient_id = ?", (late[0],))
        conn.execute("DELETE FROM his_patients WHERE patient_id = ?", (late[0],))
    sync(db, SqlSource(f"sqlite:///{path}"), clock)
    with sqlite3.connect(path) as conn:  # arrives late: same time, the lowest key
        conn.execute(f"INSERT INTO his_patients VALUES ({', '.join('?' * len(late))})", late)
    clock.advance(dt.timedelta(minutes=5))
    again = sync(db, SqlSource(f"sqlite:///{path}"), clock)
    with db.session() as s:
        stored = set(s.scalars(select(Patient.his_id)))
        rejected = set(s.scalars(select(HisReject.row_key)))
    assert late[0] in stored | rejected
    assert again.entities["patients"].inserted + again.entities["patients"].rejected >= 1


@pytest.mark.parametrize("overlap_min", [0, 10])
def test_a_row_committed_late_with_an_earlier_time_is_found_within_the_overlap(
        sqlite_db: Database, clock: FakeClock, tmp_path: Path, overlap_min: int) -> None:
    """A slow HIS transaction commits a row stamped 5 minutes before the newest row already
    synced: a 10-minute overlap finds it; without one only `--full` would."""
    path = tmp_path / "his.sqlite"
    generate_his(path, patients=30)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE his_patients SET updated_at = '2026-02-01 08:00:00'")
        late = conn.execute("SELECT * FROM his_patients WHERE patient_id IN "
                            "(SELECT min(patient_id) FROM his_patients)").fetchone()
        conn.execute("DELETE FROM his_encounters WHERE patient_id = ?", (late[0],))
        conn.execute("DELETE FROM his_patients WHERE patient_id = ?", (late[0],))
    overlap = dt.timedelta(minutes=overlap_min)
    sync(sqlite_db, SqlSource(f"sqlite:///{path}"), clock, overlap=overlap)
    columns = [c[1] for c in sqlite3.connect(path).execute("PRAGMA table_info(his_patients)")]
    row = dict(zip(columns, late, strict=True)) | {"updated_at": "2026-02-01 07:55:00"}
    with sqlite3.connect(path) as conn:
        conn.execute(f"INSERT INTO his_patients ({', '.join(row)}) "
                     f"VALUES ({', '.join('?' * len(row))})", tuple(row.values()))
    clock.advance(dt.timedelta(minutes=5))
    sync(sqlite_db, SqlSource(f"sqlite:///{path}"), clock, overlap=overlap)
    with sqlite_db.session() as s:
        seen = set(s.scalars(select(Patient.his_id))) | set(s.scalars(select(HisReject.row_key)))
    assert (late[0] in seen) == bool(overlap_min)


def test_csv_source_gives_the_same_store_as_sqlite(db: Database, his: tuple[Path, Manifest],
                                                   clock: FakeClock, tmp_path: Path) -> None:
    path, _ = his
    export_csv(path, tmp_path / "csv")
    sync(db, FileSource(tmp_path / "csv"), clock)
    reference = Database(f"sqlite:///{tmp_path / 'ref.sqlite'}")
    reference.migrate()
    try:
        sync(reference, SqlSource(f"sqlite:///{path}"), clock, batch_size=1000)
        assert dump(db) == dump(reference)
    finally:
        reference.dispose()


def test_temporary_source_errors_are_retried_with_backoff(
        db: Database, his: tuple[Path, Manifest], clock: FakeClock, tmp_path: Path) -> None:
    path, _ = his
    sleeps: list[float] = []
    # Goes down mid-stream after 3 good batches, for two attempts: the waits double.
    flaky = FlakySource(SqlSource(f"sqlite:///{path}"), failures=2, after_batches=3)
    report = sync(db, flaky, clock, sleeps=sleeps, retries=3)
    assert report.status is SyncRunStatus.COMPLETED and report.retries == 2
    assert sleeps == [0.5, 1.0]
    # Down from the start.
    second = Database(f"sqlite:///{tmp_path / 'second.sqlite'}")
    reference = Database(f"sqlite:///{tmp_path / 'ref.sqlite'}")
    try:
        second.migrate()
        sleeps.clear()
        flaky = FlakySource(SqlSource(f"sqlite:///{path}"), failures=2)
        assert sync(second, flaky, clock, sleeps=sleeps, retries=3).retries == 2
        assert sleeps == [0.5, 1.0]
        reference.migrate()
        sync(reference, SqlSource(f"sqlite:///{path}"), clock)
        assert dump(db) == dump(reference) == dump(second)
    finally:
        second.dispose()
        reference.dispose()


def test_a_source_down_too_long_fails_the_run_but_keeps_what_was_committed(
        db: Database, his: tuple[Path, Manifest], clock: FakeClock) -> None:
    path, _ = his
    flaky = FlakySource(SqlSource(f"sqlite:///{path}"), failures=10, after_batches=2)
    sleeps: list[float] = []
    with pytest.raises(SourceUnavailable):
        sync(db, flaky, clock, sleeps=sleeps, retries=2)
    assert sleeps == [0.5, 1.0]
    with db.session() as s:
        run = s.execute(select(HisSyncRun)).scalar_one()
        assert run.status is SyncRunStatus.FAILED and "SourceUnavailable" in (run.error or "")
        assert s.execute(text("SELECT count(*) FROM patients")).scalar_one() > 0
    report = sync(db, SqlSource(f"sqlite:///{path}"), clock)  # the HIS is back
    assert report.entities["patients"].read < his[1].patient_rows  # resumed, not restarted
    with db.session() as s:
        statuses = Counter(s.execute(select(HisSyncRun.status)).scalars())
        assert statuses == {SyncRunStatus.FAILED: 1, SyncRunStatus.COMPLETED: 1}


@pytest.mark.slow
def test_parallel_workers_give_the_same_store(sqlite_db: Database, his: tuple[Path, Manifest],
                                              clock: FakeClock, tmp_path: Path) -> None:
    path, _ = his
    report = sync(sqlite_db, SqlSource(f"sqlite:///{path}"), clock, workers=2, batch_size=50,
                  local_until_warm=False)
    assert report.status is SyncRunStatus.COMPLETED
    assert report.batches_in_workers >= 15  # all but the first batch went to the pool
    reference = Database(f"sqlite:///{tmp_path / 'ref.sqlite'}")
    reference.migrate()
    try:
        sync(reference, SqlSource(f"sqlite:///{path}"), clock, workers=1, batch_size=333)
        assert dump(sqlite_db) == dump(reference)
    finally:
        reference.dispose()
