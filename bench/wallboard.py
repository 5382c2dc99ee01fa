"""Benchmark: the wallboard's live feed at 200 calls in progress.

    .venv/bin/python bench/wallboard.py            # 60 s of state changes, 3 viewers
    .venv/bin/python bench/wallboard.py --quick    # 15 s; under a minute in all

A server process (its CPU measured on its own) runs what production runs between a dialer's
calls and a supervisor's screen: the dialer's `LiveBoard` fed by 200 simulated calls, each
walking dialling -> ringing -> in the IVR -> (for one in four: in a queue -> with a nurse)
-> ended and at once placed again, every step after 0.5-4 s (about 80 state changes a
second); the dialer's `LiveFeed` (SSE over HTTP, announced in an SQLite store); and the real
console app (uvicorn), whose hub follows the feed and serves `/wallboard/events` to the
viewers, who log in through the form and read the stream from this process.

Figures, all measured in this run:
- wallboard_delay_p95_ms: from a change's own timestamp (the event's time, taken where the
  dialer publishes it) to a viewer reading it, p95 over every viewer (target <= 1000);
- cpu_ms_per_update: the server process's CPU (user + system) / state changes published;
- baseline, a bare relay: the same calls and changes in the same kind of process, each
  change JSON-encoded and written to each viewer's SSE socket by a plain asyncio server (no
  board, feed, hub, store or console); cpu_vs_bare_relay and delay_p95_vs_bare_relay are
  the ratios (what the real path costs over the least any SSE relay must do);
- lost: changes published while the viewers were connected that some viewer never got.
A browser is replaced by an SSE client here: the page's own rendering is not measured
(it is throttled to 5 frames a second in console.js).
The last line printed is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import re
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CALLS = 200
PASSWORD = "bench-password-123"


# -- the server process ------------------------------------------------------------------------


class _Changes:
    """200 calls changing state forever; `emit(attempt, department, state)` is called for
    each change."""

    def __init__(self, emit: Callable[[int, int, str], None], seed: int = 7) -> None:
        self._emit = emit
        self._rng = random.Random(seed)
        self.published = 0
        self._next_attempt = CALLS

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(self._call(i, stop) for i in range(CALLS)))

    async def _call(self, attempt: int, stop: asyncio.Event) -> None:
        rng = self._rng
        await asyncio.sleep(rng.uniform(0, 2))
        while not stop.is_set():
            path = ["dialling", "ringing", "in_ivr"]
            if rng.random() < 0.25:
                path += ["in_queue", "with_person"]
            for state in [*path, "ended"]:
                self._emit(attempt, 1 + attempt % 2, state)
                self.published += 1
                await asyncio.sleep(rng.uniform(0.5, 4.0))
            self._next_attempt += 1
            attempt = self._next_attempt


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _serve_and_measure(changes: _Changes, duration: float, port: int) -> None:
    """Tell the parent the port, wait for its go, run the changes for `duration`, report."""
    print(json.dumps({"port": port}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    stop = asyncio.Event()
    cpu, t = _cpu(), time.perf_counter()
    runner = asyncio.create_task(changes.run(stop))
    await asyncio.sleep(duration)
    stop.set()
    cpu, elapsed = _cpu() - cpu, time.perf_counter() - t
    print(json.dumps({"published": changes.published, "cpu_s": cpu, "elapsed_s": elapsed}),
          flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)  # the parent has read everything
    runner.cancel()


async def full_server(duration: float) -> None:
    import uvicorn

    from console.deps import ConsoleDeps
    from console.passwords import hash_password
    from console.web import create_app
    from core.audit import AuditLog
    from core.clock import SystemClock
    from core.enums import CallProgress, Role
    from core.live_feeds import announce
    from core.store.db import Database
    from core.store.models import Department, User
    from dialer.call_plan import AttemptId, ProgressEvent
    from dialer.live_board import LiveBoard
    from dialer.live_feed import LiveFeed
    from recordings.store import RecordingStore
    from tests.unit.console.server import free_port
    from tests.unit.dialer.test_live_board import _plan

    tmp = Path(tempfile.mkdtemp(prefix="bench-wallboard-"))
    clock = SystemClock()
    db = Database(f"sqlite:///{tmp / 'store.sqlite'}")
    db.migrate()
    with db.session() as s:
        s.add_all([Department(id=1, code="CARD", name="心内科"),
                   Department(id=2, code="ORTH", name="骨科")])
        s.add(User(username="bench", display_name="Bench", role=Role.ADMIN,
                   password_hash=hash_password(PASSWORD), active=True,
                   created_at=clock.now()))
    audit = AuditLog(clock, bytes(range(32)))
    board = LiveBoard(clock, lambda: (len(board.calls), CALLS))
    progress = {"dialling": CallProgress.DIALLED, "ringing": CallProgress.RINGING,
                "in_ivr": CallProgress.ANSWERED, "in_queue": CallProgress.IN_QUEUE,
                "with_person": CallProgress.CONNECTED, "ended": CallProgress.ENDED}

    def emit(attempt: int, department: int, state: str) -> None:
        if state == "dialling":
            board(ProgressEvent(AttemptId(attempt), CallProgress.PLACED, clock.now(),
                                plan=_plan(attempt, department)))
        else:
            board(ProgressEvent(AttemptId(attempt), progress[state], clock.now(),
                                agent="nurse" if state == "with_person" else None))

    stop = asyncio.Event()

    async def _announce(url: str) -> None:
        with db.session() as s:
            announce(s, "bench:1", url, clock.now())

    async def _withdraw() -> None:
        return None

    feed = asyncio.create_task(LiveFeed(board).run(stop, _announce, _withdraw))
    app = create_app(ConsoleDeps(db=db, clock=clock, audit=audit,
                                 recordings=RecordingStore(tmp / "rec", clock, audit),
                                 secret_key="b" * 48))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn has no event for it
        await asyncio.sleep(0.05)
    await _serve_and_measure(_Changes(emit), duration, port)
    stop.set()
    server.should_exit = True
    await asyncio.gather(feed, serving, return_exceptions=True)


async def bare_server(duration: float) -> None:
    writers: list[asyncio.StreamWriter] = []

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
        writers.append(writer)

    def emit(attempt: int, department: int, state: str) -> None:
        kind = "end" if state == "ended" else "call"
        data = b"data: " + json.dumps(
            {"type": kind, "key": f"bare/{attempt}", "department_id": department,
             "script": "s", "state": state,
             "since": dt.datetime.now(dt.UTC).isoformat()}).encode() + b"\n\n"
        for w in writers:
            w.write(data)

    server = await asyncio.start_server(client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    await _serve_and_measure(_Changes(emit), duration, port)
    server.close()


# -- the viewers (this process) -------------------------------------------------------------


async def _viewer(base: str, login: bool, delays: list[float], keys: set[str],
                  connected: asyncio.Event, done: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(10, read=None)) as c:
        path = "/events"
        if login:
            page = await c.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf is not None, page.text[:300]
            reply = await c.post("/login", data={"username": "bench", "password": PASSWORD,
                                                 "csrf": csrf.group(1)})
            assert reply.status_code in (200, 303), reply.text[:300]
            path = "/wallboard/events"
        async with c.stream("GET", path) as stream:
            connected.set()
            async for line in stream.aiter_lines():
                if done.is_set():
                    return
                if not line.startswith("data: "):
                    continue
                m = json.loads(line[6:])
                if m.get("type") != "call":
                    continue
                now = dt.datetime.now(dt.UTC)
                delays.append((now - dt.datetime.fromisoformat(m["since"])).total_seconds())
                keys.add(f'{m["key"].rsplit("/", 1)[1]}:{m["state"]}')


async def run_mode(mode: str, duration: float, viewers: int) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--child", mode, "--duration", str(duration), cwd=REPO,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    port = json.loads(await proc.stdout.readline())["port"]
    base = f"http://127.0.0.1:{port}"
    delays: list[list[float]] = [[] for _ in range(viewers)]
    keys: list[set[str]] = [set() for _ in range(viewers)]
    done = asyncio.Event()
    ready = [asyncio.Event() for _ in range(viewers)]
    tasks = [asyncio.create_task(_viewer(base, mode == "full", delays[i], keys[i], ready[i],
                                         done)) for i in range(viewers)]
    for event in ready:
        await event.wait()
    await asyncio.sleep(2.0 if mode == "full" else 0.2)  # the hub finds the feed
    proc.stdin.write(b"go\n")
    await proc.stdin.drain()
    result = json.loads(await proc.stdout.readline())
    await asyncio.sleep(1.5)  # the last changes arrive
    done.set()
    proc.stdin.write(b"bye\n")
    await proc.stdin.drain()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.wait_for(proc.wait(), 30)
    all_delays = sorted(d for per in delays for d in per)
    seen_by_all = set.intersection(*keys) if keys else set()
    return {"published": result["published"], "cpu_s": result["cpu_s"],
            "elapsed_s": result["elapsed_s"], "delays": all_delays,
            "received": [len(k) for k in keys], "seen_by_all": len(seen_by_all),
            "union": len(set.union(*keys))}


def p95(values: list[float]) -> float:
    return values[min(len(values) - 1, int(0.95 * len(values)))] if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="15 s of changes")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--viewers", type=int, default=3)
    parser.add_argument("--child", choices=["full", "bare"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(full_server(args.duration) if args.child == "full"
                    else bare_server(args.duration))
        return
    duration = 15.0 if args.quick else args.duration
    bare = asyncio.run(run_mode("bare", duration, args.viewers))
    full = asyncio.run(run_mode("full", duration, args.viewers))
    out: dict[str, Any] = {}
    for name, r in (("bare relay", bare), ("wallboard", full)):
        cpu_ms = 1000 * r["cpu_s"] / max(1, r["published"])
        print(f"{name:11s}: {r['published']:,} changes in {r['elapsed_s']:.1f} s "
              f"({r['published'] / r['elapsed_s']:.0f}/s) to {args.viewers} viewers; "
              f"server CPU {cpu_ms:.3f} ms per change; delay p50 "
              f"{1000 * r['delays'][len(r['delays']) // 2]:.1f} ms, p95 "
              f"{1000 * p95(r['delays']):.1f} ms, max {1000 * r['delays'][-1]:.1f} ms")
        out[name] = (cpu_ms, 1000 * p95(r["delays"]))
    # a change is lost when some viewer saw others' but never that one (those before the
    # viewers connected and after they stopped reading are not counted)
    lost = full["union"] - full["seen_by_all"]
    print(json.dumps({
        "calls": CALLS, "viewers": args.viewers, "changes": full["published"],
        "wallboard_delay_p95_ms": round(out["wallboard"][1], 1),
        "cpu_ms_per_update": round(out["wallboard"][0], 4),
        "bare_delay_p95_ms": round(out["bare relay"][1], 1),
        "bare_cpu_ms_per_update": round(out["bare relay"][0], 4),
        "delay_p95_vs_bare_relay": round(out["wallboard"][1] / out["bare relay"][1], 2),
        "cpu_vs_bare_relay": round(out["wallboard"][0] / out["bare relay"][0], 2),
        "lost": lost}))


if __name__ == "__main__":
    main()
