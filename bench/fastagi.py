"""Benchmark: the FastAGI server under N concurrent sessions that speak as Asterisk does.

    .venv/bin/python bench/fastagi.py            # N = 100, 500, 1000 (the issue's sizes)
    .venv/bin/python bench/fastagi.py --quick    # N = 50, 100; under a minute

The load generator plays Asterisk: it opens N FastAGI sessions on 127.0.0.1 (started over a
one-second ramp), sends the recorded environment (tests/fixtures/asterisk/agi/
followup_dtmf_record) and answers every command with the recorded response of the same verb,
after the recorded delay (prompt playback, the patient's think time) divided by ten, so N
sessions offer ten times the command rate of N real calls.

The engine under test runs in its own process: our `FastAgiServer` with `AgiChannel`, whose
handler issues the recorded dialogue through the Channel methods (answer, GET VARIABLE,
STREAM FILE, GET DATA, WAIT FOR DIGIT, RECORD FILE, SET VARIABLE, HANGUP). The baseline, in
the same run and the same way: panoramisk's stock `fast_agi.Application` serving a trivial
route that sends the same command lines as plain strings (panoramisk is in the `bench` extra:
`pip install -e '.[bench]'`; `make bench-quick` installs it).

Figures, for each N and each server:
- command round trip, p50 and p99: from the generator writing a response to it reading the
  server's next command (the server's turnaround, loopback included);
- engine CPU ms per completed call: the server process's CPU time over the phase / calls;
- the generator's own event-loop lag (p99 of 5 ms ticks): on a shared machine this is the
  floor under the round trips it can measure, printed beside them with the load average;
then, with no waits at all, capacity: both servers loaded at once by the same generator,
each of its workers alternating sessions between them (fixed count, fixed concurrency), the
generator pinned to one core and both servers to another, so whatever the shared machine
does to the CPU's speed it does to both; a server's capacity is the sessions it completed
per second of its own process's CPU (what one core of it serves), and `capacity_ratio` is
ours / panoramisk, the median of a few such rounds.
(Timed one after the other, the ratio swung between 0.75 and 1.3 on this 2-core machine from
one run to the next, and the wall-clock rate of a lone server is the generator's: one
Python process, as busy per session as the server, saturates its core first.)
Ratios: ours / panoramisk.
Targets at N = 1000: p99 <= 10 ms and <= 5 ms CPU per call.

Dead air: the engine as it runs a call (`AsteriskBackend`'s route: the `CallPlan` built
before the originate, `IvrCallHandler` over `AgiChannel`, answers stored in SQLite, prompts
from espeak-ng with the opening and greeting rendered by the planner) under 100 concurrent answered
calls; the time from the session's start (the patient answered) to the first prompt's
STREAM FILE, p50/p95 (`dead_air_p95_ms`, target <= 150 ms).
The last line printed is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.clock import SystemClock
from dialer.asterisk.agi import AgiRequest
from dialer.asterisk.agi_channel import AgiChannel
from dialer.asterisk.fastagi import FastAgiServer
from dialer.asterisk.testing import AgiRecording, AgiReplayer
from ivr.channel import Prompt
from tests.audit_key import TEST_AUDIT_KEY

REPO = Path(__file__).resolve().parent.parent
AGI = REPO / "tests" / "fixtures" / "asterisk" / "agi"
RECORDING = AgiRecording.load(AGI / "followup_dtmf_record.dialogue.txt",
                              AGI / "followup_dtmf_record.timing.txt")
SOUNDS = Path("/var/lib/followup-lab/sounds")


# built once, as the engine's PromptMaker builds a call's prompts before it is answered
_PROMPTS = {name: Prompt(SOUNDS / f"followup-{name}.wav", name, name)
            for name in ("hello", "press", "confirm", "record", "goodbye")}


def _prompt(name: str) -> Prompt:
    return _PROMPTS[name]


async def recorded_dialogue(channel: AgiChannel) -> None:
    """The recorded followup_dtmf_record dialogue, issued through the Channel seam."""
    await channel.answer()
    await channel.get_variable("FOLLOWUP_TASK")
    await channel.set_variable("FOLLOWUP_STAGE", "greeting")
    await channel.play(_prompt("hello"))
    q1 = await channel.collect_digits(_prompt("press"), 1, 8.0)
    await channel.play(_prompt("confirm"))
    q2 = await channel.collect_digits(None, 1, 10.0)
    await channel.play(_prompt("record"))
    clip = await channel.record(None, 15.0, 0.0)
    await channel.set_variable("FOLLOWUP_RESULT", q1.digits + q2.digits)
    await channel.set_variable("FOLLOWUP_RECORDING", str(clip.audio or ""))
    await channel.play(_prompt("goodbye"))
    await channel.hangup()


def command_lines() -> list[str]:
    """The exact lines `recorded_dialogue` sends (for the panoramisk route)."""
    from dialer.asterisk.agi_emulator import emulated_agi_channel
    from ivr.testing import Press, Silence

    async def run() -> list[str]:
        channel, emu = emulated_agi_channel([Press("1"), Press("2"), Silence()], Path("/tmp"))
        await recorded_dialogue(channel)
        return emu.commands

    return asyncio.run(run())


# -- the servers (each in its own process) --------------------------------------------------

def _serve(kind: str, conn: Connection, lines: list[str]) -> None:
    asyncio.run(_serve_async(kind, conn, lines))


DEAD_AIR_CALLS = 100


async def _ivr_route(work: Path, n: int) -> tuple[Any, Any]:
    """The engine's call path for `n` planned calls on a fresh SQLite store: (resolver,
    handler) for the FastAGI server, as `AsteriskBackend` wires them."""
    from core.audit import AuditLog
    from core.calling_window import CallingRules
    from core.store.db import Database
    from dialer.attempt_log import AttemptLog
    from dialer.call_handler import IvrCallHandler
    from dialer.call_plan import CallPlan
    from dialer.call_planner import CallPlanner, PlannerSettings, ScriptLibrary
    from dialer.claims import TaskClaimer
    from dialer.retry_policy import RetryPolicy
    from ivr.prompt_maker import PromptMaker
    from ivr.script_loader import load_scripts
    from ivr.tts import build_prompt_audio
    from recordings.store import RecordingStore
    from tests.integration.dialer_seed import seed_due_tasks

    clock = SystemClock()
    db = Database(f"sqlite:///{work / 'dead-air.sqlite'}")
    db.migrate()
    seed_due_tasks(db, n, clock.now())
    claimer = TaskClaimer(db, "bench", __import__("datetime").timedelta(minutes=30),
                          CallingRules.from_settings("00:00-24:00", []), "Asia/Shanghai")
    audit = AuditLog(clock, TEST_AUDIT_KEY)
    attempts = AttemptLog(db, RetryPolicy(), RecordingStore(work / "rec", clock, audit),
                          "asterisk")
    prompts = PromptMaker(build_prompt_audio(work, {"zh-CN": "espeak-ng"}, {}))
    library = ScriptLibrary(load_scripts(REPO / "scripts"), "zh-CN")
    planner = CallPlanner(db, attempts, library, prompts, PlannerSettings(
        hospital="示范医院", hospital_en="Demo Hospital", hospital_language="zh-CN",
        emergency_number="120", nurse_queue="followup-nurses", agent_queue="followup-agents",
        nurse_hours="00:00-24:00", hospital_tz="Asia/Shanghai"))
    handler = IvrCallHandler(db, attempts, prompts, None, clock)
    plans: dict[str, CallPlan] = {}
    for task in claimer.claim(clock.now(), n):
        prepared = planner.prepare(task, clock.now())
        plan = await planner.plan(prepared, attempts.begin(task, clock.now()))
        plans[str(plan.attempt_id)] = plan

    async def resolve(attempt_id: str) -> CallPlan | None:
        return plans.get(attempt_id)

    async def run(plan: CallPlan, request: AgiRequest, channel: AgiChannel) -> None:
        await handler.run(plan, channel)

    return resolve, run


async def _serve_async(kind: str, conn: Connection, lines: list[str]) -> None:
    loop = asyncio.get_running_loop()
    if kind == "ivr":
        import tempfile

        work = Path(tempfile.mkdtemp(prefix="bench-dead-air-"))
        resolve_plan, run_plan = await _ivr_route(work, DEAD_AIR_CALLS)
        ivr_server: FastAgiServer[Any] = FastAgiServer(resolve_plan, run_plan, SystemClock(),
                                                       work, port=0)
        await ivr_server.start()
        port = ivr_server.port
    elif kind == "ours":
        async def resolve(attempt_id: str) -> str | None:
            return attempt_id

        async def handler(attempt: str, request: AgiRequest, channel: AgiChannel) -> None:
            await recorded_dialogue(channel)

        server: FastAgiServer[str] = FastAgiServer(resolve, handler, SystemClock(),
                                                   Path("/tmp"), port=0)
        await server.start()
        port = server.port
    else:
        from panoramisk import fast_agi

        app = fast_agi.Application()

        async def route(request: Any) -> None:
            for line in lines:
                await request.send_command(line)

        app.add_route("followup", route)
        raw = await asyncio.start_server(app.handler, "127.0.0.1", 0, backlog=4096)
        port = raw.sockets[0].getsockname()[1]
    conn.send(port)
    while True:
        msg = await loop.run_in_executor(None, conn.recv)
        if msg == "cpu":
            conn.send(time.process_time())
        elif msg == "stop":
            conn.send("bye")
            return


class ServerProcess:
    def __init__(self, kind: str, lines: list[str]) -> None:
        self.kind = kind
        self._conn, child = mp.Pipe()
        self._proc = mp.get_context("fork").Process(target=_serve, args=(kind, child, lines),
                                                    daemon=True)
        self._proc.start()
        self.port: int = self._conn.recv()
        self.pid = self._proc.pid or 0

    def cpu(self) -> float:
        self._conn.send("cpu")
        return float(self._conn.recv())

    def stop(self) -> None:
        self._conn.send("stop")
        self._conn.recv()
        self._proc.join(5)


# -- the load generator (plays Asterisk) ----------------------------------------------------

async def session(port: int, script: str, delay_scale: float, rtts: list[float],
                  start_at: float, first_prompt: list[float] | None = None) -> bool:
    """One FastAGI session as Asterisk runs it. True when the server saw it to the end.
    `first_prompt` gets the time from the session's start to its first STREAM FILE."""
    await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    replayer = AgiReplayer(RECORDING)
    sent_at = opened = time.perf_counter()
    writer.write(RECORDING.environment_bytes(script))
    hung_up = False
    try:
        while True:
            raw = await reader.readline()
            now = time.perf_counter()
            if not raw.endswith(b"\n"):
                return hung_up
            rtts.append(now - sent_at)
            command = raw[:-1].decode()
            if first_prompt is not None and command.startswith("STREAM FILE"):
                first_prompt.append(now - opened)
                first_prompt = None
            lines, delay = replayer.reply(command)
            hung_up = hung_up or command == "HANGUP"
            if delay_scale > 0 and delay > 0:
                await asyncio.sleep(delay * delay_scale)
            writer.write(("\n".join(lines) + "\n").encode())
            sent_at = time.perf_counter()
    except OSError:
        return False
    finally:
        writer.close()


async def drive(port: int, n: int, delay_scale: float, ramp_s: float,
                concurrency: int | None = None, query: bool = True
                ) -> tuple[list[float], int, float]:
    """Run n sessions; returns (round trips, completed sessions, wall seconds).

    `query`: the attempt id rides in the script's query string (ours); panoramisk routes
    on the exact `agi_network_script`, query included, so its sessions ask for `followup`.
    """

    def script(i: int) -> str:
        return f"followup?attempt=b{i}" if query else "followup"

    rtts: list[float] = []
    t0 = time.perf_counter()
    if concurrency is None:
        starts = [t0 + random.uniform(0, ramp_s) for _ in range(n)]
        results = await asyncio.gather(*(
            session(port, script(i), delay_scale, rtts, s)
            for i, s in enumerate(starts)))
        done = sum(results)
    else:
        counter = iter(range(n))
        done = 0

        async def worker() -> None:
            nonlocal done
            for i in counter:
                ok = await session(port, script(i), 0.0, rtts, 0.0)
                done += ok  # not `done += await ...`: that reads `done` before awaiting

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return rtts, done, time.perf_counter() - t0


async def dead_air(port: int, n: int, scale: float) -> list[float]:
    """n answered calls within a second; each one's wait for its first prompt (s)."""
    waits: list[float] = []
    rtts: list[float] = []
    t0 = time.perf_counter()
    await asyncio.gather(*(session(port, f"followup?attempt={i + 1}", scale, rtts,
                                   t0 + random.uniform(0, 1.0), waits) for i in range(n)))
    return waits


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drive_with_lag(port: int, n: int, delay_scale: float, ramp_s: float,
                         concurrency: int | None, query: bool
                         ) -> tuple[list[float], int, float, list[float]]:
    """`drive`, plus how late the generator's own event loop ran (5 ms ticks): the floor
    under every round trip it measures on a shared machine."""
    lags: list[float] = []
    running = True

    async def ticker() -> None:
        while running:
            t = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - t - 0.005)

    tick = asyncio.create_task(ticker())
    rtts, done, wall = await drive(port, n, delay_scale, ramp_s, concurrency, query)
    running = False
    await tick
    return rtts, done, wall, lags


def measure(server: ServerProcess, n: int, delay_scale: float, ramp_s: float,
            concurrency: int | None = None) -> dict[str, float]:
    cpu0 = server.cpu()
    rtts, done, wall, lags = asyncio.run(drive_with_lag(
        server.port, n, delay_scale, ramp_s, concurrency, query=server.kind == "ours"))
    cpu = server.cpu() - cpu0
    return {"p50_ms": pct(rtts, 0.50) * 1000, "p99_ms": pct(rtts, 0.99) * 1000,
            "cpu_ms_per_call": cpu * 1000 / max(1, done), "completed": done, "sessions": n,
            "wall_s": wall, "sessions_per_s": done / wall if wall else 0.0,
            "mean_ms": statistics.fmean(rtts) * 1000 if rtts else float("nan"),
            "generator_lag_p99_ms": pct(lags, 0.99) * 1000}


def _pin(servers: list[int]) -> dict[int, set[int]] | None:
    """The generator on one core and both servers together on another, so the two
    servers run under the same conditions (left to the scheduler, which server shared a
    core with the busy generator changed from run to run, and the ratio with it). None
    (nothing pinned) on a one-core machine."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None
    before = {pid: os.sched_getaffinity(pid) for pid in [0, *servers]}
    os.sched_setaffinity(0, {cores[0]})
    for pid in servers:
        os.sched_setaffinity(pid, {cores[1]})
    return before


def _unpin(before: dict[int, set[int]] | None) -> None:
    for pid, cores in (before or {}).items():
        os.sched_setaffinity(pid, cores)


def measure_pair(ours: ServerProcess, base: ServerProcess, n: int, concurrency: int
                 ) -> dict[str, float]:
    """n sessions to each server at once, every worker alternating between the two; the
    sessions each completed per second of its own CPU."""

    async def run() -> dict[str, int]:
        done = {"ours": 0, "panoramisk": 0}
        plan = iter([(server, i) for i in range(n) for server in (ours, base)])
        rtts: list[float] = []

        async def worker() -> None:
            for server, i in plan:
                script = f"followup?attempt=b{i}" if server is ours else "followup"
                ok = await session(server.port, script, 0.0, rtts, 0.0)
                done[server.kind] += ok  # not `+= await`: that reads the count before

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done

    pinned = _pin([ours.pid, base.pid])
    try:
        cpu0 = {"ours": ours.cpu(), "panoramisk": base.cpu()}
        done = asyncio.run(run())
        cpu = {"ours": ours.cpu() - cpu0["ours"],
               "panoramisk": base.cpu() - cpu0["panoramisk"]}
    finally:
        _unpin(pinned)
    return {kind: done[kind] / cpu[kind] if cpu[kind] > 0 else 0.0 for kind in done}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 50, 100; under a minute")
    args = parser.parse_args()
    if importlib.util.find_spec("panoramisk") is None:
        parser.exit(2, "bench/fastagi.py: the baseline needs panoramisk: "
                       "pip install -e '.[bench]'\n")
    sizes = [50, 100] if args.quick else [100, 500, 1000]
    capacity_n, capacity_c, capacity_rounds = (600, 50, 3) if args.quick else (2000, 100, 5)
    scale = 0.1  # the recorded waits, compressed tenfold
    figures: dict[str, Any] = {"scale": scale, "quick": args.quick}
    lines = command_lines()
    servers = {kind: ServerProcess(kind, lines) for kind in ("ours", "panoramisk")}
    try:
        for server in servers.values():  # warm up both (first-call costs are not per call)
            measure(server, 20, 0.0, 0.0, concurrency=5)
        figures["loadavg_1min_at_start"] = round(os.getloadavg()[0], 2)
        print(f"{'N':>6} {'server':>11} {'p50 ms':>8} {'p99 ms':>8} {'cpu ms/call':>12} "
              f"{'done':>9} {'gen lag p99':>12}")
        for n in sizes:
            row: dict[str, dict[str, float]] = {}
            for kind, server in servers.items():
                row[kind] = measure(server, n, scale, ramp_s=1.0)
                r = row[kind]
                print(f"{n:>6} {kind:>11} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} "
                      f"{r['cpu_ms_per_call']:12.2f} {int(r['completed']):>4}/{n:<4} "
                      f"{r['generator_lag_p99_ms']:12.2f}")
                figures[f"{'' if kind == 'ours' else 'panoramisk_'}generator_lag_p99_ms_n{n}"] \
                    = round(r["generator_lag_p99_ms"], 3)
            ours, base = row["ours"], row["panoramisk"]
            for key in ("p50_ms", "p99_ms", "cpu_ms_per_call"):
                figures[f"{key}_n{n}"] = round(ours[key], 3)
                figures[f"panoramisk_{key}_n{n}"] = round(base[key], 3)
                figures[f"{key}_ratio_n{n}"] = round(ours[key] / base[key], 3) if base[key] \
                    else None
            figures[f"completed_n{n}"] = int(ours["completed"])
            figures[f"panoramisk_completed_n{n}"] = int(base["completed"])
            print(f"{'':>6} {'ratio':>11} {figures[f'p50_ms_ratio_n{n}']:8.2f} "
                  f"{figures[f'p99_ms_ratio_n{n}']:8.2f} "
                  f"{figures[f'cpu_ms_per_call_ratio_n{n}']:12.2f}   (ours / panoramisk)")
        ratios: list[float] = []
        cap: dict[str, list[float]] = {kind: [] for kind in servers}
        for _ in range(capacity_rounds):
            paired = measure_pair(servers["ours"], servers["panoramisk"], capacity_n,
                                  capacity_c)
            for kind in servers:
                cap[kind].append(paired[kind])
            ratios.append(paired["ours"] / paired["panoramisk"])
        for kind in servers:
            print(f"capacity {kind:>11}: {statistics.median(cap[kind]):8.0f} sessions per "
                  f"server CPU second (median of {capacity_rounds} rounds of {capacity_n} "
                  f"sessions each, both servers loaded at once, concurrency {capacity_c})")
        figures["capacity_sessions_per_cpu_s"] = round(statistics.median(cap["ours"]), 1)
        figures["panoramisk_capacity_sessions_per_cpu_s"] = round(
            statistics.median(cap["panoramisk"]), 1)
        figures["capacity_ratio"] = round(statistics.median(ratios), 3)
        figures["capacity_ratio_rounds"] = [round(r, 3) for r in ratios]
        ivr = ServerProcess("ivr", lines)
        try:
            waits = asyncio.run(dead_air(ivr.port, DEAD_AIR_CALLS, scale))
        finally:
            ivr.stop()
        figures["dead_air_calls"] = len(waits)
        figures["dead_air_p50_ms"] = round(pct(waits, 0.50) * 1000, 1)
        figures["dead_air_p95_ms"] = round(pct(waits, 0.95) * 1000, 1)
        figures["target_dead_air_p95_ms_le_150"] = figures["dead_air_p95_ms"] <= 150.0
        print(f"dead air ({len(waits)} calls answered within 1 s, SQLite store, espeak-ng): "
              f"p50 {figures['dead_air_p50_ms']} ms, p95 {figures['dead_air_p95_ms']} ms "
              "from the answer to the first STREAM FILE")
        top = sizes[-1]
        figures["target_p99_ms_le_10"] = figures[f"p99_ms_n{top}"] <= 10.0
        figures["target_cpu_ms_per_call_le_5"] = figures[f"cpu_ms_per_call_n{top}"] <= 5.0
        figures["target_capacity_ratio_ge_1"] = figures["capacity_ratio"] >= 1.0
    finally:
        for server in servers.values():
            server.stop()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
