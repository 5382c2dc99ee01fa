"""Benchmark: sync 1,000,000 HIS rows from an SQLite HIS file into a fresh SQLite store.

"Rows" are HIS rows read: patients + encounters (about 400k + 600k, including the ~2.5%
per kind broken on purpose, which are quarantined). The synthetic HIS is generated once and
cached under var/bench/.

Figures, all measured in this run:
- baseline_copy_s: a plain `INSERT INTO <store table> SELECT ... FROM his.<table>` of the
  same rows into a freshly migrated store's patients and encounters tables (same indexes,
  no parsing, no validation, constant placeholders where the store needs ids); the headline
  ratio uses it. plain_copy_s: the same rows into bare tables (no indexes), for reference;
- sync_s: a full `HisSync` run (parse, validate, phones, hash, upsert, quarantine,
  watermark per batch) with the settings' defaults (batch 5000, 2 workers), in a child
  process so its peak memory is its own;
- rows_per_s = rows / sync_s; ratio_vs_insert_select = baseline_copy_s / sync_s (target
  >= 0.1); peak_rss_mib = the sync process's peak RSS plus its largest worker's.

    .venv/bin/python bench/his_sync.py            # 1,000,000 rows
    .venv/bin/python bench/his_sync.py --quick    # 50,000 rows, under a minute
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ENC_PER_PATIENT = 1.5


def ensure_his(rows: int, cache: Path) -> Path:
    from hisync.synthetic import GENERATOR_VERSION, generate_his, manifest_path

    patients = round(rows / (1 + ENC_PER_PATIENT))
    path = cache / f"his_{patients}_v{GENERATOR_VERSION}.sqlite"
    if not (path.exists() and manifest_path(path).exists()):
        t = time.perf_counter()
        generate_his(path, patients=patients, encounters_per_patient=ENC_PER_PATIENT)
        print(f"generated {path} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return path


def fresh_store(path: Path) -> str:
    from core.store.db import Database

    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    db = Database(url)
    db.migrate()
    db.dispose()
    return url


BASELINE_SQL = [
    """INSERT OR IGNORE INTO patients (his_id, mrn, name, sex, birth_date, phone, phone_alt,
         language, timezone, deceased, opt_out_phone, opt_out_sms, consent_phone, consent_sms,
         content_hash, plan_dirty, updated_at)
       SELECT patient_id, coalesce(mrn, ''), coalesce(patient_name, ''), 'unknown',
         birth_date, phone, phone2, coalesce(lang, 'zh-CN'), 'Asia/Shanghai', 0, 0, 0, 1, 0,
         '', 1, updated_at FROM his.his_patients""",
    """INSERT OR IGNORE INTO encounters (his_id, patient_id, type, department_id,
         attending_doctor, admit_at, discharge_at, diagnoses, procedures, disposition,
         content_hash, plan_dirty, updated_at)
       SELECT visit_no, 1, coalesce(visit_type, ''), 1, doctor, admit_time, discharge_time,
         coalesce(diag_codes, '[]'), coalesce(proc_codes, '[]'), discharge_way, '', 1,
         updated_at FROM his.his_encounters""",
]


def baseline(his: Path, store: Path) -> tuple[float, float]:
    fresh_store(store)
    conn = sqlite3.connect(store)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"ATTACH DATABASE 'file:{his}?mode=ro' AS his")
    t, cpu = time.perf_counter(), time.process_time()
    with conn:
        for sql in BASELINE_SQL:
            conn.execute(sql)
    elapsed, cpu = time.perf_counter() - t, time.process_time() - cpu
    conn.close()
    return elapsed, cpu


def plain_copy(his: Path, store: Path) -> float:
    """The same rows copied into bare tables (no indexes, no constraints): the floor."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(store)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"ATTACH DATABASE 'file:{his}?mode=ro' AS his")
    t = time.perf_counter()
    with conn:
        conn.execute("CREATE TABLE p AS SELECT * FROM his.his_patients")
        conn.execute("CREATE TABLE e AS SELECT * FROM his.his_encounters")
    elapsed = time.perf_counter() - t
    conn.close()
    return elapsed


def child_sync(his: Path, store: Path, workers: int, batch_size: int) -> None:
    """Runs in its own process: one full sync, then a JSON line of its figures."""
    from core.clock import SystemClock
    from core.store.db import Database
    from hisync.mapping import DEFAULT_MAPPING, load_mapping
    from hisync.sources import SqlSource
    from hisync.sync import HisSync, SyncOptions

    db = Database(fresh_store(store))
    mapping = load_mapping(DEFAULT_MAPPING)
    source = SqlSource(f"sqlite:///{his}")
    start = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    report = HisSync(db, source, mapping, SystemClock(),
                     SyncOptions(batch_size=batch_size, workers=workers)).run()
    elapsed = time.perf_counter() - t
    source.close()
    db.dispose()
    totals = report.totals
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"sync_s": elapsed, "read": totals.read, "inserted": totals.inserted,
                      "rejected": totals.rejected, "rss_self_mib": me.ru_maxrss / 1024,
                      "rss_worker_mib": kids.ru_maxrss / 1024,
                      "cpu_main_s": (me.ru_utime + me.ru_stime
                                     - start.ru_utime - start.ru_stime),
                      "cpu_workers_s": kids.ru_utime + kids.ru_stime}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="50,000 rows")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--cache", type=Path, default=REPO / "var" / "bench")
    parser.add_argument("--child-sync", nargs=2, metavar=("HIS", "STORE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_sync:
        child_sync(Path(args.child_sync[0]), Path(args.child_sync[1]), args.workers,
                   args.batch_size)
        return
    rows = 50_000 if args.quick else args.rows
    args.cache.mkdir(parents=True, exist_ok=True)
    his = ensure_his(rows, args.cache)
    load_before = os.getloadavg()[0]
    base_s, base_cpu = baseline(his, args.cache / "baseline_store.sqlite")
    plain_s = plain_copy(his, args.cache / "plain_copy.sqlite")
    out = subprocess.run(
        [sys.executable, __file__, "--child-sync", str(his), str(args.cache / "sync_store.sqlite"),
         "--workers", str(args.workers), "--batch-size", str(args.batch_size)],
        check=True, capture_output=True, text=True, cwd=REPO)
    child = json.loads(out.stdout.strip().splitlines()[-1])
    sync_s = child["sync_s"]
    read = child["read"]
    print(f"HIS rows read:            {read:,} ({child['inserted']:,} stored, "
          f"{child['rejected']:,} quarantined)")
    print(f"baseline INSERT..SELECT:  {base_s:.2f} s into the store's tables (their indexes); "
          f"{plain_s:.2f} s into bare tables")
    print(f"full sync:                {sync_s:.2f} s ({read / sync_s:,.0f} rows/s, "
          f"{args.workers} workers, batch {args.batch_size})")
    print(f"ratio copy/sync:          {base_s / sync_s:.3f} (target >= 0.1)")
    peak = child["rss_self_mib"] + child["rss_worker_mib"]
    print(f"peak RSS:                 {child['rss_self_mib']:.0f} MiB sync process + "
          f"{child['rss_worker_mib']:.0f} MiB largest worker (target < 1024)")
    sync_cpu = child["cpu_main_s"] + child["cpu_workers_s"]
    load = max(load_before, os.getloadavg()[0])
    # On a shared machine wall times follow the neighbours' load; CPU seconds do not.
    print(f"CPU seconds:              copy {base_cpu:.2f}, sync {sync_cpu:.2f} "
          f"(main {child['cpu_main_s']:.2f} + workers {child['cpu_workers_s']:.2f}); "
          f"load average up to {load:.1f} on {os.cpu_count()} CPUs")
    print(json.dumps({"rows": read, "rows_per_s": round(read / sync_s),
                      "baseline_copy_s": round(base_s, 3), "sync_s": round(sync_s, 3),
                      "ratio_vs_insert_select": round(base_s / sync_s, 4),
                      "peak_rss_mib": round(peak, 1), "baseline_cpu_s": round(base_cpu, 3),
                      "plain_copy_s": round(plain_s, 3),
                      "ratio_vs_plain_copy": round(plain_s / sync_s, 4),
                      "sync_cpu_s": round(sync_cpu, 3), "sync_main_cpu_s":
                      round(child["cpu_main_s"], 3), "load_avg_1m": round(load, 2)}))


if __name__ == "__main__":
    main()
