"""Benchmark: 200 concurrent calls over two Asterisk servers and two trunks.

    .venv/bin/python bench/servers.py            # 1,000 calls of 34 s, 200 at once (7 min)
    .venv/bin/python bench/servers.py --quick    # 400 calls of 5 s; under a minute

Recorded-traffic replay: two fake Asterisks (`dialer.asterisk.fake_ami.FakeAmiServer`, in a
process of their own so their CPU is not the engine's) replay the AMI stream Asterisk 22
sent for an answered call (tests/fixtures/asterisk/ami/originate_answered_ivr) at the
recorded pace (the call holds its channel 34 s; quick: its gaps scaled to 5 s), less what
the rendered manager.conf filters out. The engine under test is the
real composition on the Asterisk backend: claims and leases in SQLite, the call planner
over the shipped scripts, the campaign's pacer, `AsteriskBackend` choosing a trunk
(`mobile` for +861 numbers, overflowing to `landline`) and the server with the most free
channels, one AMI client per server, the call tracker and the attempt log. The IVR does
not run here (no FastAGI session is opened; its cost is bench/fastagi.py's): each call is
stored answered and partial, as a call whose IVR never started.

Figures:
- utilisation: busy channel-seconds / available channel-seconds (200 channels) from the
  first call's start to the last call's start, as the fake servers saw the calls (target
  >= 0.95);
- cap_violations: for each trunk, a peak of concurrent calls above its channel cap or more
  call setups within 0.95 s than its calls-per-second cap; for each server, a peak above
  its channel cap; counted on the servers' side (target 0);
- engine_cpu_ms_per_call: the engine process's CPU / calls;
- baseline: the same campaign through one server and one trunk of 200 channels, in the
  same run; cpu_vs_one_server = engine_cpu_ms_per_call / the baseline's (what several
  servers and trunks cost).
The engine's CPU as a share of real Asterisks' is printed by the real-Asterisk tier
(tests/integration/asterisk/test_two_servers.py): a replay costs the fake nothing alike.
The last line printed is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.dialer import SIM_START, bench_planner
from core.audit import AuditLog
from core.calling_window import CallingRules
from core.clock import SystemClock
from core.store.db import Database
from dialer.asterisk.ami import AmiConfig
from dialer.asterisk.backend import AsteriskBackend
from dialer.asterisk.fake_ami import AmiScenario, FakeAmiServer
from dialer.asterisk.servers import ServerLink, ServerPool
from dialer.asterisk.telephony import AsteriskTelephony, OriginatePlan
from dialer.attempt_log import AttemptLog
from dialer.call_plan import CallPlan
from dialer.call_result import CallIvrResult
from dialer.campaign import Campaign, CampaignOptions
from dialer.claims import TaskClaimer
from dialer.pacing import Pacer
from dialer.retry_policy import RetryPolicy
from dialer.trunks import Trunk, TrunkLines
from ivr.channel import Channel
from recordings.store import RecordingStore
from tests.audit_key import TEST_AUDIT_KEY
from tests.caps import most_starts_within, peak_concurrent
from tests.integration.dialer_seed import seed_due_tasks

RECORDED = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "asterisk" / "ami" / \
    "originate_answered_ivr.dialogue.txt"
RECORDED_CALL_S = 33.7  # the recorded call, originate to the last event
CHANNELS = 200
TWO_TRUNKS = [Trunk("mobile", prefixes=("+861",), max_channels=100, calls_per_second=50),
              Trunk("landline", max_channels=100, calls_per_second=50)]
ONE_TRUNK = [Trunk("carrier", max_channels=200, calls_per_second=100)]


class NoIvr:
    """No FastAGI session reaches the engine in a replay without one: never called."""

    async def run(self, plan: CallPlan, channel: Channel) -> CallIvrResult | None:
        raise AssertionError("no IVR in this benchmark")

    async def handoff_unanswered(self, plan: CallPlan, channel: Channel) -> None:
        raise AssertionError("no IVR in this benchmark")


def as_filtered(scenario: AmiScenario) -> AmiScenario:
    """The stream the engine's AMI user gets: the rendered manager.conf filters these."""
    kept = tuple((gap, frame) for gap, frame in scenario.messages
                 if not (frame.event or "").startswith(("RTCP", "Newexten", "AGIExec")))
    return AmiScenario(scenario.name, scenario.originate_action_id, kept)


def serve_fakes(servers: int, time_scale: float) -> None:
    """The child process: `servers` fake Asterisks; their ports on the first line, every
    call they played (server, dial string, start, end) once stdin closes."""
    async def main() -> None:
        scenario = as_filtered(AmiScenario.load(RECORDED))
        fakes = [FakeAmiServer({}, default=scenario, time_scale=time_scale)
                 for _ in range(servers)]
        for fake in fakes:
            await fake.start()
        print(json.dumps({"ports": [f.port for f in fakes]}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        print(json.dumps({"calls": [[i, c.dial, c.started, c.ended]
                                    for i, f in enumerate(fakes) for c in f.calls]}))
        for fake in fakes:
            await fake.close()

    asyncio.run(main())


def run_campaign(servers: int, trunks: list[Trunk], server_channels: int, calls: int,
                 time_scale: float, work: Path) -> dict[str, Any]:
    """The engine over `servers` fake Asterisks until every seeded call was made."""
    child = subprocess.Popen([sys.executable, __file__, "--fake-servers", str(servers),
                              str(time_scale)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None
    ports = json.loads(child.stdout.readline())["ports"]
    url = f"sqlite:///{work / f'servers-{uuid.uuid4().hex[:6]}.sqlite'}"
    db = Database(url)
    db.migrate()
    seed_due_tasks(db, calls, SIM_START)
    clock = SystemClock()
    audit = AuditLog(clock, TEST_AUDIT_KEY)
    claimer = TaskClaimer(db, "bench", dt.timedelta(minutes=10),
                          CallingRules.from_settings("00:00-24:00", []), "Asia/Shanghai")
    log = AttemptLog(db, RetryPolicy(), RecordingStore(work / "rec", clock, audit), "asterisk")
    links = [ServerLink(f"ast{i + 1}", AsteriskTelephony(
        AmiConfig("127.0.0.1", port, "followup", "secret"), clock,
        OriginatePlan(trunk=trunks[0])), server_channels) for i, port in enumerate(ports)]
    backend = AsteriskBackend(ServerPool(links), TrunkLines(trunks, clock, asyncio.sleep),
                              clock, NoIvr(), "127.0.0.1", 0, work / "clips")
    campaign = Campaign(db, claimer, log, bench_planner(db, log, work), backend,
                        Pacer(CHANNELS, 1000.0, clock), clock, asyncio.sleep,
                        CampaignOptions(poll_interval_s=0.2))

    async def go() -> None:
        await backend.start()
        try:
            await campaign.run(asyncio.Event(), until_idle=True, next_due=claimer.next_due,
                               horizon=clock.now() + dt.timedelta(minutes=1))
        finally:
            await backend.close()

    # the due tasks are seeded at SIM_START (in the past): all due now
    cpu0 = time.process_time()
    asyncio.run(go())
    cpu = time.process_time() - cpu0
    db.dispose()
    out, _ = child.communicate("", timeout=60)
    played = json.loads(out.strip().splitlines()[-1])["calls"]
    return {"cpu_s": cpu, "calls": played}


def figures(run: dict[str, Any], trunks: list[Trunk], server_channels: int) -> dict[str, Any]:
    calls = run["calls"]
    spans = [(float(c[2]), float(c[3])) for c in calls]
    first = min(a for a, _ in spans)
    last = max(a for a, _ in spans)
    busy = sum(max(0.0, min(b, last) - a) for a, b in spans)
    violations = 0
    by_trunk: dict[str, int] = {}
    for trunk in trunks:
        mine = [(float(c[2]), float(c[3])) for c in calls
                if str(c[1]).endswith("@" + trunk.name)]
        by_trunk[trunk.name] = len(mine)
        violations += peak_concurrent(mine) > trunk.max_channels
        violations += most_starts_within([a for a, _ in mine], 0.95) > trunk.calls_per_second
    by_server: dict[str, int] = {}
    for server in sorted({int(c[0]) for c in calls}):
        mine = [(float(c[2]), float(c[3])) for c in calls if int(c[0]) == server]
        by_server[f"ast{server + 1}"] = len(mine)
        violations += peak_concurrent(mine) > server_channels
    return {"calls": len(calls),
            "utilisation": busy / (CHANNELS * (last - first)) if last > first else 1.0,
            "cap_violations": int(violations), "by_trunk": by_trunk, "by_server": by_server,
            "peak_channels": peak_concurrent(spans),
            "engine_cpu_ms_per_call": 1000 * run["cpu_s"] / max(len(calls), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="400 calls of 5 s")
    ap.add_argument("--calls", type=int)
    ap.add_argument("--fake-servers", nargs=2, metavar=("N", "TIME_SCALE"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.fake_servers:
        serve_fakes(int(args.fake_servers[0]), float(args.fake_servers[1]))
        return
    logging.basicConfig(level=logging.ERROR)
    calls = args.calls or (400 if args.quick else 1000)
    call_s = 5.0 if args.quick else RECORDED_CALL_S
    scale = call_s / RECORDED_CALL_S
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        two = figures(run_campaign(2, TWO_TRUNKS, 100, calls, scale, work), TWO_TRUNKS, 100)
        print(f"2 servers, 2 trunks: {two['calls']} calls {two['by_server']} "
              f"{two['by_trunk']}, peak {two['peak_channels']} channels, utilisation "
              f"{two['utilisation']:.1%}, {two['cap_violations']} cap violations, "
              f"{two['engine_cpu_ms_per_call']:.2f} ms engine CPU/call")
        one = figures(run_campaign(1, ONE_TRUNK, CHANNELS, calls, scale, work), ONE_TRUNK,
                      CHANNELS)
        print(f"baseline, 1 server, 1 trunk: {one['calls']} calls, utilisation "
              f"{one['utilisation']:.1%}, {one['engine_cpu_ms_per_call']:.2f} ms engine "
              f"CPU/call")
    print(json.dumps({
        "calls": two["calls"], "call_s": call_s, "channels": CHANNELS,
        "utilisation": round(two["utilisation"], 4),
        "cap_violations": two["cap_violations"],
        "engine_cpu_ms_per_call": round(two["engine_cpu_ms_per_call"], 3),
        "baseline_engine_cpu_ms_per_call": round(one["engine_cpu_ms_per_call"], 3),
        "cpu_vs_one_server": round(two["engine_cpu_ms_per_call"]
                                   / one["engine_cpu_ms_per_call"], 3),
        "baseline_utilisation": round(one["utilisation"], 4),
        "calls_by_server": two["by_server"], "calls_by_trunk": two["by_trunk"],
        "cpu_count": os.cpu_count()}))


if __name__ == "__main__":
    main()
