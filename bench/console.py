"""Benchmark: the console's dashboard, call search and monthly report queries over
10,000,000 call attempts in PostgreSQL (five years of a large hospital).

    .venv/bin/python bench/console.py            # 10,000,000 attempts (the issue's size)
    .venv/bin/python bench/console.py --quick    # 100,000 attempts, under a minute

PostgreSQL: $FOLLOWUP_BENCH_PG_URL, else $FOLLOWUP_TEST_PG_URL, else
postgresql://followup:followup@127.0.0.1/followup_test. A scratch database is created,
migrated (the real schema and indexes), filled with generate_series (12 departments, five
years of tasks, two attempts per task, five survey answers per completed satisfaction call
stored as the IVR stores them, a ticket per failed task), analysed, measured, and dropped.

Each query runs through the console's own service functions (the SQL the pages run):
dashboard (hospital-wide, and one department's manager), call search (newest page, one
department, a patient-name prefix, an MRN as stored, in lower case and by its start, a
phone as people type it), monthly report (this month live + eleven finished months from
snapshots, the template's satisfaction index included). Cold: one department's finished
month computed from the raw rows with no snapshot (target <= 2 s), reported apart.

Baseline, measured in the same run: one sequential scan of call_attempts
(`SELECT count(*), sum(talk_time_s)`), what each query would cost without its index.
Figures: p95 in ms, and p95 / baseline (lower is better; target p95 <= 300 ms, cold
month <= 2,000 ms).
The last line printed is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from console.access import ROLE_PERMISSIONS, Principal
from console.calls import search_calls
from console.dashboard import dashboard
from console.forms import CallSearch
from console.periods import local_today
from console.questions import IndexItem
from console.reports import ReportService, month_figures
from core.clock import FakeClock
from core.enums import Role
from core.store.db import Database
from tests.pg_scratch import scratch_database

NOW = dt.datetime(2026, 3, 10, 6, 0, tzinfo=dt.UTC)
TZ = "Asia/Shanghai"
DEPARTMENTS = 12
TARGET_MS = 300.0
COLD_TARGET_MS = 2000.0
YEARS = 5


def _pg_url() -> str:
    return (os.environ.get("FOLLOWUP_BENCH_PG_URL") or os.environ.get("FOLLOWUP_TEST_PG_URL")
            or "postgresql://followup:followup@127.0.0.1/followup_test")


def _fill(db: Database, attempts: int) -> dict[str, int]:
    tasks = attempts // 2
    patients = max(1000, tasks // 3)
    days = 365 * YEARS
    params = {"p": patients, "t": tasks, "d": DEPARTMENTS, "days": days,
              "now": NOW.replace(tzinfo=None), "day0": (NOW - dt.timedelta(days=days - 1)).date()}
    steps = [
        """INSERT INTO departments (code, name, name_en)
           SELECT 'D' || g, '科室' || g, 'Dept ' || g FROM generate_series(1, :d) g""",
        """INSERT INTO patients (his_id, mrn, name, sex, birth_date, phone, language, timezone,
               deceased, opt_out_phone, opt_out_sms, consent_phone, consent_sms, content_hash,
               plan_dirty, updated_at)
           SELECT 'H' || g, 'M' || lpad(g::text, 8, '0'),
                  (ARRAY['王','李','张','刘','陈','杨','赵','黄'])[1 + g % 8] || '患者' || g,
                  'female', DATE '1950-01-01' + (g % 15000),
                  '+86138' || lpad(g::text, 8, '0'), 'zh-CN', 'Asia/Shanghai',
                  false, false, false, true, false, 'x', false, :now
           FROM generate_series(1, :p) g""",
        """INSERT INTO encounters (his_id, patient_id, type, department_id, discharge_at,
               diagnoses, procedures, content_hash, plan_dirty, updated_at)
           SELECT 'E' || g, g, 'inpatient', 1 + g % :d, :now, '[]', '[]', 'y', false, :now
           FROM generate_series(1, :p) g""",
        """INSERT INTO followup_tasks (plan_key, patient_id, encounter_id, department_id,
               rule_id, offset_days, script_id, script_version, call_scripts, due_date,
               calling_window, timezone, window_start, window_end, priority, status,
               attempts, max_attempts, next_attempt_at, created_at, updated_at)
           SELECT 'k' || g, 1 + g % :p, 1 + g % :p, 1 + (1 + g % :p) % :d, 'r', 3,
                  (ARRAY['inpatient-satisfaction','cardiology-post-discharge',
                         'post-operative'])[1 + g % 3], 1, '[]',
                  :day0 + (g::bigint * :days / :t)::int, '09:00-20:00', 'Asia/Shanghai',
                  :now, :now, 50,
                  (ARRAY['done','done','done','done','done','done','failed','stopped',
                         'pending','done'])[1 + g % 10],
                  2, 3, :now, :now, :now
           FROM generate_series(1, :t) g""",
        """INSERT INTO call_attempts (task_id, patient_id, department_id, number, status,
               backend, phone, dialled, dial_outcome, script_outcome, talk_time_s,
               created_at, answered_at, ended_at)
           SELECT t.id, t.patient_id, t.department_id, n, 'ended', 'sim', '+8613800000000',
                  true,
                  CASE WHEN n = 1 THEN 'no_answer' WHEN t.status = 'failed' THEN 'busy'
                       ELSE 'answered' END,
                  CASE WHEN n = 2 AND t.status = 'done' THEN 'completed'
                       WHEN n = 2 AND t.status = 'stopped' THEN 'refused' END,
                  60 + t.id % 120,
                  t.due_date + make_interval(hours => 1 + n * 2, mins => (t.id % 50)::int),
                  NULL, NULL
           FROM followup_tasks t CROSS JOIN generate_series(1, 2) n""",
        """INSERT INTO answers (attempt_id, task_id, script_id, script_version, question_id,
               kind, source, value, needs_review, created_at)
           SELECT a.id, a.task_id, 'inpatient-satisfaction', 1, q.qid, q.kind, 'keypad',
                  CASE WHEN q.kind = 'scale' THEN ((a.id * 7 + q.n) % 5 + 1)::text
                       ELSE CASE WHEN a.id % 4 = 0 THEN 'no' ELSE 'yes' END END,
                  false, a.created_at
           FROM call_attempts a JOIN followup_tasks t ON t.id = a.task_id
           CROSS JOIN (VALUES (1, 'overall', 'scale'), (2, 'doctors', 'scale'),
                              (3, 'nurses', 'scale'), (4, 'food', 'scale'),
                              (5, 'recommend', 'yes_no')) AS q(n, qid, kind)
           WHERE a.script_outcome = 'completed' AND t.script_id = 'inpatient-satisfaction'""",
        """INSERT INTO tickets (task_id, attempt_id, patient_id, department_id, reason,
               priority, status, summary, created_at)
           SELECT t.id, NULL, t.patient_id, t.department_id, 'attempts_exhausted', 50,
                  CASE WHEN t.due_date > :now - interval '14 days' THEN 'open' ELSE 'closed'
                  END, 'not reached', :now
           FROM followup_tasks t WHERE t.status = 'failed'""",
    ]
    with db.engine.begin() as conn:
        conn.execute(text("SET LOCAL synchronous_commit = off"))
        for sql in steps:
            conn.execute(text(sql), params)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
        counts = {name: int(conn.execute(text(sql)).scalar_one()) for name, sql in (
            ("patients", "SELECT count(*) FROM patients"),
            ("followup_tasks", "SELECT count(*) FROM followup_tasks"),
            ("call_attempts", "SELECT count(*) FROM call_attempts"),
            ("answers", "SELECT count(*) FROM answers"),
            ("tickets", "SELECT count(*) FROM tickets"))}
    return counts


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def _time(fn: Callable[[], Any], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100,000 attempts")
    ap.add_argument("--attempts", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=None)
    args = ap.parse_args()
    attempts = args.attempts or (100_000 if args.quick else 10_000_000)
    repeat = args.repeat or (10 if args.quick else 30)

    with scratch_database(_pg_url(), "bench_console") as url:
        db = Database(url)
        try:
            db.migrate()
            t0 = time.perf_counter()
            counts = _fill(db, attempts)
            fill_s = time.perf_counter() - t0
            print(f"filled in {fill_s:.1f}s: {counts}", flush=True)
            figures = _measure(db, repeat)
        finally:
            db.dispose()
    figures = {"attempts": counts["call_attempts"], "answers": counts["answers"],
               "fill_s": round(fill_s, 1), "target_ms": TARGET_MS,
               "cold_target_ms": COLD_TARGET_MS, **figures}
    print(json.dumps(figures))


def _measure(db: Database, repeat: int) -> dict[str, Any]:
    clock = FakeClock(NOW)
    everyone = Principal(1, "bench-admin", "bench", Role.ADMIN, frozenset({Role.ADMIN}),
                         ROLE_PERMISSIONS[Role.ADMIN], None)
    manager = Principal(2, "bench-mgr", "bench", Role.DEPT_MANAGER,
                        frozenset({Role.DEPT_MANAGER}), ROLE_PERMISSIONS[Role.DEPT_MANAGER],
                        frozenset({3}))
    today = local_today(NOW, TZ)
    scales = [IndexItem("inpatient-satisfaction", q, 1, 5)
              for q in ("overall", "doctors", "nurses", "food")]
    index = (*scales, IndexItem("inpatient-satisfaction", "recommend", 0, 1, yes_no=True))
    reports = ReportService(clock, TZ, index)

    def run(fn: Callable[[Any], Any]) -> Callable[[], Any]:
        def go() -> Any:
            with db.session() as s:
                return fn(s)
        return go

    baseline = _time(run(lambda s: s.execute(text(
        "SELECT count(*), sum(talk_time_s) FROM call_attempts")).one()), max(3, repeat // 3))
    baseline_ms = statistics.median(baseline)

    queries: dict[str, list[Callable[[], Any]]] = {
        "dashboard": [run(lambda s: dashboard(s, everyone, today, TZ)),
                      run(lambda s: dashboard(s, manager, today, TZ))],
        "call_search": [
            run(lambda s: search_calls(s, everyone, CallSearch.parse({}), TZ)),
            run(lambda s: search_calls(s, manager, CallSearch.parse({}), TZ)),
            run(lambda s: search_calls(s, everyone, CallSearch.parse({"q": "M00000777"}), TZ)),
            run(lambda s: search_calls(s, everyone, CallSearch.parse({"q": "m00000777"}), TZ)),
            run(lambda s: search_calls(s, everyone, CallSearch.parse({"q": "M0000077"}), TZ)),
            run(lambda s: search_calls(s, everyone, CallSearch.parse(
                {"q": "138 0000 0777"}), TZ)),
            run(lambda s: search_calls(s, manager, CallSearch.parse(
                {"outcome": "completed", "date_from": "2026-02-01",
                 "date_to": "2026-02-28"}), TZ)),
            run(lambda s: search_calls(s, everyone, CallSearch.parse({"q": "王患者12"}), TZ)),
        ],
        "monthly_report": [run(lambda s: reports.monthly(s, manager, 3, today.replace(day=1)))],
    }
    # cold: a finished month of one department straight from the raw rows (no snapshot),
    # a different month each time so no cache of ours helps
    first = today.replace(day=1)
    months = []
    for _ in range(3):
        first = (first - dt.timedelta(days=1)).replace(day=1)
        months.append(first)
    cold = [_time(run(lambda s, m=m: month_figures(s, 3, m, TZ, index)), 1)[0] for m in months]
    reports_warmup = _time(run(lambda s: reports.monthly(s, manager, 3, today.replace(day=1))),
                           1)[0]
    out: dict[str, Any] = {"baseline_seq_scan_ms": round(baseline_ms, 1),
                           "cold_department_month_ms": round(max(cold), 1),
                           "monthly_report_first_run_ms": round(reports_warmup, 1)}
    print(f"cold department-month report (no snapshot): max {max(cold):.1f} ms of "
          f"{[round(c, 1) for c in cold]}, target <= {COLD_TARGET_MS:.0f} ms; first report "
          f"run, building twelve months of snapshots: {reports_warmup:.1f} ms", flush=True)
    for key, fns in queries.items():
        samples: list[float] = []
        per_variant = []
        for fn in fns:
            fn()  # warm the connection and the plan cache
            got = _time(fn, repeat)
            samples += got
            per_variant.append(round(_p95(got), 1))
        p95 = _p95(samples)
        out[f"{key}_p95_ms"] = round(p95, 1)
        out[f"{key}_p95_vs_seq_scan"] = round(p95 / baseline_ms, 3)
        out[f"{key}_variants_p95_ms"] = per_variant
        print(f"{key:15} p95 {p95:8.1f} ms  ({p95 / baseline_ms:.3f} x seq scan "
              f"{baseline_ms:.1f} ms; variants {per_variant}) target <= {TARGET_MS:.0f} ms",
              flush=True)
    out["all_within_target"] = all(out[f"{k}_p95_ms"] <= TARGET_MS for k in queries) and \
        out["cold_department_month_ms"] <= COLD_TARGET_MS
    return out


if __name__ == "__main__":
    main()
