"""A synthetic HIS: an SQLite file shaped like a Chinese hospital's system, with broken rows.

`generate_his(path, patients=N)` writes `his_patients` (N rows, plus duplicates) and
`his_encounters` (about 1.5 per patient) and returns a `Manifest` of every row it broke on
purpose and how, which it also writes beside the file (`<file>.manifest.json`) so a test can
check each one is in the quarantine with that reason. Seeded and deterministic: the same
arguments give the same file, byte for byte in its rows.

What is in it: realistic Chinese names (surname frequency list + common given-name
characters) and a few foreign patients (en / ko) with US and Korean numbers; phones in the
shapes HIS data really has (bare 11-digit mobiles, +86 / 0086 forms, dashed, landlines with
area codes); seven departments with ICD-10 codes that fit them; inpatient, outpatient,
surgery and exam encounters; discharge dispositions; some deceased, some opted out, some
inpatients still admitted on `as_of`. Timestamps are local (Asia/Shanghai) without a zone;
`updated_at` ties in groups of three so batch boundaries fall inside ties.

Broken on purpose, `broken_rate` (default 2.5%) of each entity's rows for EACH kind:
patients: unparseable birth date, invalid phone, missing name, conflicting duplicate key;
encounters: unparseable admission time, unknown department code, missing visit type,
conflicting duplicate key; plus 1% encounters of unknown patients. A conflicting duplicate is
two rows (same key and `updated_at`, different data): both go to quarantine. Broken patients
get no encounters, so nothing cascades.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
import math
import random
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.enums import RejectReason
from core.phones import library_e164
from hisync.synthetic_data import (
    DEPARTMENTS,
    FEMALE_CHARS,
    FOREIGN,
    LANDLINE_AREAS,
    MALE_CHARS,
    MOBILE_PREFIXES,
    SURNAMES,
    US_AREA_CODES,
)

PATIENT_COLUMNS = ("patient_id", "mrn", "patient_name", "sex_code", "birth_date", "phone",
                   "phone2", "lang", "deceased_flag", "refuse_followup", "updated_at")
ENCOUNTER_COLUMNS = ("visit_no", "patient_id", "visit_type", "dept_code", "doctor",
                     "admit_time", "discharge_time", "diag_codes", "proc_codes",
                     "discharge_way", "updated_at")
TABLES = {"his_patients": PATIENT_COLUMNS, "his_encounters": ENCOUNTER_COLUMNS}
# Bumped whenever the same arguments would generate different rows (caches key on it).
GENERATOR_VERSION = 1
_CHUNK = 50_000


@dataclass(frozen=True)
class BrokenRow:
    """One key the generator broke: the reject the sync must produce for it."""

    entity: str
    row_key: str
    reason: RejectReason
    field: str
    rows: int = 1  # rows in quarantine for this key (2 for a conflicting duplicate)


@dataclass(frozen=True)
class Manifest:
    patient_rows: int
    encounter_rows: int
    broken: tuple[BrokenRow, ...]

    @property
    def total_rows(self) -> int:
        return self.patient_rows + self.encounter_rows

    def count(self, entity: str, reason: RejectReason) -> int:
        return sum(b.rows for b in self.broken if b.entity == entity and b.reason is reason)

    def to_json(self) -> str:
        data = {"patient_rows": self.patient_rows, "encounter_rows": self.encounter_rows,
                "broken": [asdict(b) for b in self.broken]}
        return json.dumps(data, ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        broken = tuple(BrokenRow(b["entity"], b["row_key"], RejectReason(b["reason"]),
                                 b["field"], b["rows"]) for b in data["broken"])
        return cls(data["patient_rows"], data["encounter_rows"], broken)


def manifest_path(his_path: str | Path) -> Path:
    return Path(f"{his_path}.manifest.json")


class _Gen:
    def __init__(self, seed: int, as_of: dt.date) -> None:
        self.rng = random.Random(seed)
        self.as_of = dt.datetime.combine(as_of, dt.time(12, 0))
        self._surnames = [s for s, _ in SURNAMES]
        self._cum = list(_cumulative([w for _, w in SURNAMES]))

    def name(self, male: bool) -> str:
        rng = self.rng
        surname = rng.choices(self._surnames, cum_weights=self._cum)[0]
        chars = MALE_CHARS if male else FEMALE_CHARS
        given = rng.choice(chars) + (rng.choice(chars) if rng.random() < 0.7 else "")
        return surname + given

    def mobile(self) -> str:
        return self.rng.choice(MOBILE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"

    def phone(self) -> str:
        rng = self.rng
        r = rng.random()
        m = self.mobile()
        if r < 0.78:
            return m
        if r < 0.83:
            return f"+86 {m[:3]} {m[3:7]} {m[7:]}"
        if r < 0.86:
            return "0086-" + m
        if r < 0.89:
            return f"{m[:3]}-{m[3:7]}-{m[7:]}"
        while True:
            area, digits = rng.choice(LANDLINE_AREAS)
            local = str(rng.randint(2, 8)) + "".join(rng.choices("0123456789", k=digits - 1))
            number = f"0{area}-{local}" if rng.random() < 0.7 else f"(0{area}){local}"
            if library_e164(number, "CN") is not None:
                return number

    def foreign_phone(self, lang: str) -> str:
        rng = self.rng
        while True:
            if lang == "en":
                number = (f"+1 {rng.choice(US_AREA_CODES)} {rng.randint(200, 999)} "
                          f"{rng.randrange(10000):04d}")
            else:
                number = f"+82 10-{rng.randint(2000, 9999)}-{rng.randrange(10000):04d}"
            if library_e164(number, "CN") is not None:
                return number

    def stamp(self, when: dt.datetime, slash: bool = False) -> str:
        if slash:
            return when.strftime("%Y/%m/%d %H:%M")
        return when.strftime("%Y-%m-%d %H:%M:%S")


def _cumulative(weights: Sequence[float]) -> Iterator[float]:
    total = 0.0
    for w in weights:
        total += w
        yield total


def _pick_broken(rng: random.Random, n: int, kinds: int, rate: float) -> list[set[int]]:
    k = max(1, math.ceil(n * rate))
    chosen = rng.sample(range(n), min(n, k * kinds))
    return [set(chosen[i * k:(i + 1) * k]) for i in range(kinds)]


def _patients(g: _Gen, n: int, rate: float, broken: list[BrokenRow], clean: list[str],
              deceased: set[str]) -> Iterator[tuple[Any, ...]]:
    rng = g.rng
    bad_date, bad_phone, no_name, dup = _pick_broken(rng, n, 4, rate)
    base = g.as_of - dt.timedelta(days=400)
    for i in range(n):
        pid = f"P{i:08d}"
        male = rng.random() < 0.5
        lang = None
        if rng.random() < 0.012:
            name, lang = rng.choice(FOREIGN)
            phone = g.foreign_phone(lang)
        else:
            name = g.name(male)
            phone = g.phone()
            if rng.random() < 0.02:
                lang = "zh"
        sex = "9" if rng.random() < 0.005 else ("1" if male else "2")
        age = min(99, max(1, int(rng.gauss(58, 18))))
        birth = dt.date(g.as_of.year - age, rng.randint(1, 12), rng.randint(1, 28))
        r = rng.random()
        birth_s = (birth.isoformat() if r < 0.85 else birth.strftime("%Y/%m/%d") if r < 0.95
                   else f"{birth.year}年{birth.month:02d}月{birth.day:02d}日")
        phone2 = g.mobile() if rng.random() < 0.3 else None
        dead = "1" if rng.random() < 0.01 else "0"
        opt_out = "1" if rng.random() < 0.02 else "0"
        updated = g.stamp(base + dt.timedelta(seconds=i // 3))
        row = [pid, f"M{i + 100000:09d}", name, sex, birth_s, phone, phone2, lang, dead,
               opt_out, updated]
        if i in bad_date:
            row[4] = rng.choice(["1965-13-45", "1970-02-30", "不详", "19xx-05-01", "31/02/1970"])
            broken.append(BrokenRow("patients", pid, RejectReason.UNPARSEABLE_DATE, "birth_date"))
        elif i in bad_phone:
            row[5] = rng.choice(["1380013800", "138001380001", "2345", "000-00000000", "未留"])
            broken.append(BrokenRow("patients", pid, RejectReason.INVALID_PHONE, "phone"))
        elif i in no_name:
            row[2] = rng.choice([None, "", "  "])
            broken.append(BrokenRow("patients", pid, RejectReason.MISSING_FIELD, "name"))
        elif i in dup:
            twin = list(row)
            twin[5] = g.mobile()
            yield tuple(twin)
            broken.append(BrokenRow("patients", pid, RejectReason.CONFLICTING_DUPLICATE,
                                    "his_id", rows=2))
        else:
            clean.append(pid)
            if dead == "1":
                deceased.add(pid)
        yield tuple(row)


def _encounters(g: _Gen, m: int, clean: list[str], deceased: set[str], rate: float,
                broken: list[BrokenRow]) -> Iterator[tuple[Any, ...]]:
    rng = g.rng
    bad_date, bad_dept, no_type, dup = _pick_broken(rng, m, 4, rate)
    unknown = set(rng.sample(sorted(set(range(m)) - bad_date - bad_dept - no_type - dup),
                             max(1, m // 100))) if m > 10 else set()
    depts = list(DEPARTMENTS)
    types = ["ZY"] * 40 + ["MZ"] * 35 + ["SS"] * 15 + ["JC"] * 10
    base = g.as_of - dt.timedelta(days=200)
    for j in range(m):
        vid = f"V{j:09d}"
        pid = rng.choice(clean) if clean else "P00000000"
        vtype = rng.choice(types)
        dept = rng.choice(depts)
        _code, _name, _en, icd, procs = DEPARTMENTS[dept]
        admit = g.as_of - dt.timedelta(days=rng.randint(0, 180), hours=rng.randint(0, 4),
                                       minutes=rng.randint(0, 59))
        discharge: dt.datetime | None = None
        way = None
        proc = None
        if vtype == "ZY":
            discharge = admit + dt.timedelta(days=rng.randint(1, 20), hours=rng.randint(0, 6))
            if discharge > g.as_of or rng.random() < 0.03:
                discharge = None  # still in hospital
            else:
                way = "5" if pid in deceased else rng.choice("1111111111223449")
            if procs and rng.random() < 0.4:
                proc = rng.choice(procs)
        elif vtype == "SS":
            discharge = admit + dt.timedelta(days=rng.randint(0, 3), hours=rng.randint(2, 8))
            way = "1"
            proc = rng.choice(procs) if procs else None
        diags = ";".join(rng.sample(icd, rng.randint(1, min(3, len(icd)))))
        slash = rng.random() < 0.1
        updated = g.stamp(base + dt.timedelta(seconds=j // 3))
        row = [vid, pid, vtype, dept, g.name(rng.random() < 0.6), g.stamp(admit, slash),
               g.stamp(discharge, slash) if discharge else None, diags, proc, way, updated]
        if j in bad_date:
            row[5] = rng.choice(["2025-02-30 08:00:00", "2025-13-01 08:00", "待定",
                                 "32/01/2025 09:00"])
            broken.append(BrokenRow("encounters", vid, RejectReason.UNPARSEABLE_DATE, "admit_at"))
        elif j in bad_dept:
            row[3] = rng.choice(["9999", "0399", "ICU-X"])
            broken.append(BrokenRow("encounters", vid, RejectReason.UNKNOWN_DEPARTMENT,
                                    "department"))
        elif j in no_type:
            row[2] = None
            broken.append(BrokenRow("encounters", vid, RejectReason.MISSING_FIELD, "type"))
        elif j in dup:
            twin = list(row)
            twin[4] = f"{twin[4]}医生"
            yield tuple(twin)
            broken.append(BrokenRow("encounters", vid, RejectReason.CONFLICTING_DUPLICATE,
                                    "his_id", rows=2))
        elif j in unknown:
            row[1] = f"P{90_000_000 + j:08d}"
            broken.append(BrokenRow("encounters", vid, RejectReason.UNKNOWN_PATIENT,
                                    "patient_his_id"))
        yield tuple(row)


def generate_his(path: str | Path, patients: int = 300, encounters_per_patient: float = 1.5,
                 seed: int = 20260301, as_of: dt.date = dt.date(2026, 3, 1),
                 broken_rate: float = 0.025) -> Manifest:
    """Write a synthetic HIS SQLite file (replacing it) and its manifest; return the manifest."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in (path, Path(f"{path}-journal")):
        stale.unlink(missing_ok=True)
    g = _Gen(seed, as_of)
    pbroken: list[BrokenRow] = []
    ebroken: list[BrokenRow] = []
    clean: list[str] = []
    deceased: set[str] = set()
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        for table, cols in TABLES.items():
            conn.execute(f"CREATE TABLE {table} ({', '.join(c + ' TEXT' for c in cols)})")
        n_pat = _insert(conn, "his_patients", PATIENT_COLUMNS,
                        _patients(g, patients, broken_rate, pbroken, clean, deceased))
        n_enc = _insert(conn, "his_encounters", ENCOUNTER_COLUMNS,
                        _encounters(g, round(patients * encounters_per_patient), clean,
                                    deceased, broken_rate, ebroken))
        # An HIS that supports incremental reads indexes its change timestamp.
        conn.execute("CREATE INDEX ix_his_patients_upd ON his_patients (updated_at, patient_id)")
        conn.execute("CREATE INDEX ix_his_enc_upd ON his_encounters (updated_at, visit_no)")
        conn.commit()
    finally:
        conn.close()
    manifest = Manifest(n_pat, n_enc, tuple(pbroken + ebroken))
    manifest_path(path).write_text(manifest.to_json(), encoding="utf-8")
    return manifest


def _insert(conn: sqlite3.Connection, table: str, cols: Sequence[str],
            rows: Iterator[tuple[Any, ...]]) -> int:
    sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"  # noqa: S608 - fixed names
    count = 0
    while chunk := list(itertools.islice(rows, _CHUNK)):
        conn.executemany(sql, chunk)
        count += len(chunk)
    return count


def export_csv(his_path: str | Path, out_dir: str | Path) -> list[Path]:
    """Write each HIS table as `<table>.csv` (UTF-8, header row, NULL as empty)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    conn = sqlite3.connect(f"file:{his_path}?mode=ro", uri=True)
    try:
        for table, cols in TABLES.items():
            target = out / f"{table}.csv"
            with target.open("w", encoding="utf-8", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(cols)
                cur = conn.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY rowid")  # noqa: S608
                while chunk := cur.fetchmany(_CHUNK):
                    writer.writerows(chunk)
            written.append(target)
    finally:
        conn.close()
    return written
