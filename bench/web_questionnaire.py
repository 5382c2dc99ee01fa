"""Benchmark: the patient's web questionnaire's answer round trip (POST an answer, get the
next question back) at 100 concurrent patients.

    .venv/bin/python bench/web_questionnaire.py            # 3 rounds of 100 patients
    .venv/bin/python bench/web_questionnaire.py --quick    # 1 round, under a minute
    .venv/bin/python bench/web_questionnaire.py --pg       # PostgreSQL instead of SQLite

The app is served as `followup patient-web` serves it (uvicorn, one process, h11) in a
subprocess, over a store seeded with one cardiology follow-up task and its link per patient
(SQLite by default, the one-hospital store; `--pg`: a scratch database on
$FOLLOWUP_BENCH_PG_URL, else $FOLLOWUP_TEST_PG_URL, else the local test server). The rate
limit is lifted (every patient here comes from 127.0.0.1). Each patient has their own
browser (an httpx client with its own cookies): opens the link, passes the birth year, then
answers the five questions; every answer's round trip is timed. The 100 patients run at
once, in two ways:

- `web_answer_p95_ms` (the headline): 100 patients with the questionnaire open together,
  each answering 1 to 3 s after the previous page arrived (a fast reader; real people take
  longer), so about 50 answers a second arrive at random moments;
- `saturated_*`: the same 100 patients answering the moment each page arrives (a closed
  loop with no pause: 100 requests always in flight). Here the round trip is queueing
  behind the other 99, on the 2 cores the clients share with the server: it measures
  throughput (`saturated_answers_per_s`), not what a patient waits.

Baseline, measured in the same run, same server process, same clients, same two load
shapes: a bare Starlette endpoint that reads the same form and returns a page of the same
size (`/bare`); `ratio_vs_bare` is p95 / bare p95 (paced), `saturated_ratio_vs_bare` the
same under saturation. Target: web_answer_p95_ms <= 100.
`measure(quick)` returns the figures (bench/sms.py reads `web_answer_p95_ms`); the last
line printed is one JSON object of them.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import re
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.clock import FakeClock, SystemClock
from core.store.db import Database
from tests.contract.patient_web_support import BORN, build, seed
from tests.pg_scratch import scratch_database

ROOT = Path(__file__).resolve().parent.parent
PATIENTS = 100
THINK_S = (1.0, 3.0)
TARGET_MS = 100.0
ANSWERS = ("2", "2", "128", "1", "最近睡得不太好，其他都好")
_FIELDS = re.compile(r'name="(csrf|s|v|l|q)" value="([^"]*)"')


def _pg_url() -> str:
    return (os.environ.get("FOLLOWUP_BENCH_PG_URL") or os.environ.get("FOLLOWUP_TEST_PG_URL")
            or "postgresql://followup:followup@127.0.0.1/followup_test")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, round(q * len(ordered)) - 1)]


# -- the server (a subprocess: `--serve`) -------------------------------------------------

def serve(db_url: str, port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse
    from starlette.routing import Mount, Route

    db = Database(db_url)
    app, _ = build(db, SystemClock(), per_minute=10**9)
    page = "<!doctype html><html><body>" + "x" * 1400 + "</body></html>"

    async def bare(request: Request) -> HTMLResponse:
        await request.form()
        return HTMLResponse(page)

    outer = Starlette(routes=[Route("/bare", bare, methods=["POST"]), Mount("/", app=app)])
    uvicorn.run(outer, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                http="h11", lifespan="off")


class Server:
    def __init__(self, db_url: str) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", db_url, str(self.port)], cwd=ROOT)
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the questionnaire server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


# -- the patients ------------------------------------------------------------------------

async def _think(paced: bool, rng: random.Random) -> None:
    if paced:
        await asyncio.sleep(rng.uniform(*THINK_S))


async def _bare_patient(base: str, start: asyncio.Event, timings: list[float], paced: bool,
                        rng: random.Random) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        await client.post("/bare", data={"warm": "up"})
        await start.wait()
        for value in ANSWERS:
            await _think(paced, rng)
            t0 = time.perf_counter()
            reply = await client.post("/bare", data={"csrf": "x" * 40, "s": "s", "v": "1",
                                                     "l": "zh-CN", "q": "q", "answer": value})
            timings.append((time.perf_counter() - t0) * 1000)
            assert reply.status_code == 200


async def _run_round(base: str, tokens: list[str], paced: bool) -> list[float]:
    """Every patient opens the link and passes the check first; then all answer at once."""
    ready = asyncio.Semaphore(0)
    start = asyncio.Event()
    timings: list[float] = []
    rng = random.Random(12)

    async def one(token: str) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            page = await client.get(f"/q/{token}")
            fields = dict(_FIELDS.findall(page.text))
            reply = await client.post(f"/q/{token}/identity",
                                      data={"csrf": fields["csrf"], "year": str(BORN)})
            assert reply.status_code == 303, reply.status_code
            page = await client.get(f"/q/{token}")
            ready.release()
            await start.wait()
            for value in ANSWERS:
                await _think(paced, rng)
                fields = dict(_FIELDS.findall(page.text))
                t0 = time.perf_counter()
                page = await client.post(f"/q/{token}/answer",
                                         data={**fields, "answer": value})
                timings.append((time.perf_counter() - t0) * 1000)
                assert page.status_code == 200, page.status_code
            assert 'id="done"' in page.text

    tasks = [asyncio.create_task(one(t)) for t in tokens]
    for _ in tokens:
        await ready.acquire()
    start.set()
    await asyncio.gather(*tasks)
    return timings


async def _run_bare(base: str, n: int, paced: bool) -> list[float]:
    start = asyncio.Event()
    timings: list[float] = []
    rng = random.Random(12)
    tasks = [asyncio.create_task(_bare_patient(base, start, timings, paced, rng))
             for _ in range(n)]
    await asyncio.sleep(0.5)
    start.set()
    await asyncio.gather(*tasks)
    return timings


def measure(quick: bool, postgres: bool = False) -> dict[str, Any]:
    """Run the benchmark; the figures (`web_answer_p95_ms` among them)."""
    rounds = 1 if quick else 3
    with ExitStack() as stack:
        if postgres:
            url = stack.enter_context(scratch_database(_pg_url(), "bench_web"))
        else:
            tmp = stack.enter_context(TemporaryDirectory())
            url = f"sqlite:///{Path(tmp) / 'store.sqlite'}"
        db = Database(url)
        db.migrate()
        seeded = seed(db, FakeClock(dt.datetime.now(dt.UTC)), patients=PATIENTS * (rounds + 2))
        db.dispose()
        batches = [[s.token for s in seeded[i:i + PATIENTS]]
                   for i in range(0, len(seeded), PATIENTS)]
        server = Server(url)
        try:
            asyncio.run(_run_round(server.base, batches[0], paced=False))  # warm-up
            bare_busy = asyncio.run(_run_bare(server.base, PATIENTS, paced=False))
            busy_t0 = time.perf_counter()
            busy = asyncio.run(_run_round(server.base, batches[1], paced=False))
            busy_s = time.perf_counter() - busy_t0
            web: list[float] = []
            for batch in batches[2:]:
                web += asyncio.run(_run_round(server.base, batch, paced=True))
            bare = asyncio.run(_run_bare(server.base, PATIENTS, paced=True))
        finally:
            server.stop()
    p95, bare_p95 = _p(web, 0.95), _p(bare, 0.95)
    busy_p95, bare_busy_p95 = _p(busy, 0.95), _p(bare_busy, 0.95)
    return {"store": "postgresql" if postgres else "sqlite", "patients": PATIENTS,
            "rounds": rounds, "answers": len(web), "think_s": list(THINK_S),
            "web_answer_p95_ms": round(p95, 1), "web_answer_p50_ms": round(_p(web, 0.5), 1),
            "bare_p95_ms": round(bare_p95, 1),
            "ratio_vs_bare": round(p95 / bare_p95, 2) if bare_p95 else None,
            "saturated_web_p95_ms": round(busy_p95, 1),
            "saturated_bare_p95_ms": round(bare_busy_p95, 1),
            "saturated_ratio_vs_bare": round(busy_p95 / bare_busy_p95, 2)
            if bare_busy_p95 else None,
            "saturated_answers_per_s": round(len(busy) / busy_s, 1),
            "target_ms": TARGET_MS}


def web_answer_p95_ms(quick: bool) -> float:
    """The one figure bench/sms.py reports beside its own."""
    return float(measure(quick)["web_answer_p95_ms"])


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one round of 100 patients")
    ap.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    args = ap.parse_args()
    figures = measure(args.quick, args.pg)
    print(f"{figures['answers']} answers by {PATIENTS} concurrent patients "
          f"({figures['store']}, {THINK_S[0]:.0f}-{THINK_S[1]:.0f} s between answers): "
          f"p95 {figures['web_answer_p95_ms']} ms, p50 {figures['web_answer_p50_ms']} ms; "
          f"bare Starlette p95 {figures['bare_p95_ms']} ms; ratio {figures['ratio_vs_bare']} "
          f"(target p95 <= {TARGET_MS:.0f} ms)")
    print(f"saturated (no pause, 100 in flight): p95 {figures['saturated_web_p95_ms']} ms, "
          f"bare p95 {figures['saturated_bare_p95_ms']} ms, ratio "
          f"{figures['saturated_ratio_vs_bare']}; {figures['saturated_answers_per_s']} "
          "answers/s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
