"""Benchmark: ADT messages per second through the MLLP listener, each applied and ACKed.

    .venv/bin/python bench/hl7.py            # 100,000 messages
    .venv/bin/python bench/hl7.py --quick    # 5,000 messages, under a minute

Clients: `--connections` (default 4) TCP connections, each sending its share of the
messages one at a time and waiting for the ACK before the next, as an integration engine
does. The messages are A01 (admit), A08 (update) and A03 (discharge) of distinct patients,
in that order per patient, UTF-8 and GB 18030 alternating.

Figures, both measured in this run with the same clients and messages:
- echo_msgs_per_s: python-hl7's own asyncio MLLP server (`hl7.mllp.start_hl7_server`)
  parsing each message and answering `create_ack` (no store): the bare listener;
- listener_msgs_per_s: `followup his listen`'s listener and applier over a fresh SQLite
  store: decode by MSH-18, parse, validate, write patient and visit, record the control id,
  ACK;
- ratio_vs_echo = listener / echo (target >= 0.3);
- lost = messages sent - messages acknowledged AA and recorded in the store (target 0);
  the patients and visits stored are checked against the messages too.
The last line printed is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

# this file is named as the issue names it, bench/hl7.py: run as a script its folder comes
# first on sys.path and would hide the `hl7` package, so the folder is taken off
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import hl7
from hl7.mllp import start_hl7_server
from sqlalchemy import func, select

from core.store.db import Database
from core.store.models import Encounter, Hl7Message, Patient
from hisync.hl7_apply import AdtApplier
from hisync.mapping import DEFAULT_MAPPING, load_mapping
from hisync.mllp import MllpListener, frame

NOW = dt.datetime(2026, 3, 1, 4, 0, tzinfo=dt.UTC)
TEMPLATE = (
    "MSH|^~\\&|HIS|H|FOLLOWUP|H|20260301{hh:02d}{mm:02d}00||ADT^{event}^ADT_A01|{cid}|P|2.5|||"
    "||CHN|{charset}\r"
    "EVN|{event}|20260301100000\r"
    "PID|1||P{n:07d}^^^HIS^PI~M{n:07d}^^^HIS^MR||{family}^{given}||19600101|{sex}|||||"
    "138{n:08d}\r"
    "PV1|1|I|0301^^^H||||D01^李^医生|||0301|||||||||V{n:07d}|||||||||||||||||01||||||||"
    "20260220080000|{discharge}\r"
    "DG1|1||I21.9^AMI^I10")


def messages(count: int) -> list[bytes]:
    """A01, A08, A03 per patient (the last message of a short run may stop mid-patient)."""
    out: list[bytes] = []
    for i in range(count):
        n, step = divmod(i, 3)
        event = ("A01", "A08", "A03")[step]
        gb = n % 2 == 1
        text = TEMPLATE.format(
            hh=8 + step, mm=n % 60, event=event, cid=f"B{i:08d}", n=n,
            charset="GB 18030-2000" if gb else "UNICODE UTF-8",
            family="张王李赵"[n % 4], given="三" if step < 2 else "三丰",
            sex="MF"[n % 2], discharge="20260301100000" if event == "A03" else "")
        out.append(text.encode("gb18030" if gb else "utf-8"))
    return out


async def drive(port: int, msgs: list[bytes], connections: int) -> tuple[float, int]:
    """Send every message (split over connections, one at a time each); returns the wall
    time and how many ACKs said AA."""
    accepted = 0

    async def client(share: list[bytes]) -> None:
        nonlocal accepted
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for payload in share:
            writer.write(frame(payload))
            await writer.drain()
            ack = await reader.readuntil(b"\x1c\r")
            if b"MSA|AA|" in ack:
                accepted += 1
        writer.close()
        await writer.wait_closed()

    # one patient's three messages stay on one connection, in order
    shares: list[list[bytes]] = [[] for _ in range(connections)]
    for i, m in enumerate(msgs):
        shares[(i // 3) % connections].append(m)
    t0 = time.perf_counter()
    await asyncio.gather(*(client(s) for s in shares))
    return time.perf_counter() - t0, accepted


async def echo_server() -> tuple[asyncio.Server, int]:
    async def serve(reader: hl7.mllp.HL7StreamReader, writer: hl7.mllp.HL7StreamWriter
                    ) -> None:
        try:
            while not reader.at_eof():
                message = await reader.readmessage()
                writer.writemessage(message.create_ack())
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()

    server = await start_hl7_server(serve, "127.0.0.1", 0, encoding="gb18030")
    return server, int(server.sockets[0].getsockname()[1])


def run_echo(msgs: list[bytes], connections: int) -> tuple[float, int]:
    async def main() -> tuple[float, int]:
        server, port = await echo_server()
        try:
            return await drive(port, msgs, connections)
        finally:
            server.close()
            await server.wait_closed()
    return asyncio.run(main())


def run_listener(msgs: list[bytes], connections: int, store: Path) -> tuple[float, int, Database]:
    db = Database(f"sqlite:///{store}")
    db.migrate()
    applier = AdtApplier(db, load_mapping(DEFAULT_MAPPING), "hl7:bench")
    applier.open(NOW)

    async def main() -> tuple[float, int]:
        handle: Callable[[bytes], Awaitable[bytes]]

        async def handle(payload: bytes) -> bytes:
            return (await db.call(applier.apply, payload, NOW)).ack

        async def truncated(payload: bytes) -> None:
            await db.call(applier.keep_truncated, payload, NOW)

        listener = MllpListener(handle, truncated)
        port = await listener.start("127.0.0.1", 0)
        try:
            return await drive(port, msgs, connections)
        finally:
            await listener.close()
    elapsed, accepted = asyncio.run(main())
    applier.close(NOW)
    return elapsed, accepted, db


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--messages", type=int)
    ap.add_argument("--connections", type=int, default=4)
    args = ap.parse_args()
    count = args.messages or (5_000 if args.quick else 100_000)
    msgs = messages(count)
    echo_s, echo_ok = run_echo(msgs, args.connections)
    print(f"python-hl7 echo: {count} messages in {echo_s:.1f} s "
          f"({count / echo_s:.0f}/s), {echo_ok} acknowledged")
    with tempfile.TemporaryDirectory() as tmp:
        listen_s, ok, db = run_listener(msgs, args.connections, Path(tmp) / "store.sqlite")
        with db.session() as s:
            recorded = s.execute(select(func.count()).select_from(Hl7Message).where(
                Hl7Message.ack_code == "AA")).scalar_one()
            patients = s.execute(select(func.count()).select_from(Patient)).scalar_one()
            visits = s.execute(select(func.count()).select_from(Encounter)).scalar_one()
            discharged = s.execute(select(func.count()).select_from(Encounter).where(
                Encounter.discharge_at.is_not(None))).scalar_one()
        db.dispose()
    want_patients = (count + 2) // 3
    want_discharged = count // 3
    print(f"listener: {count} messages in {listen_s:.1f} s ({count / listen_s:.0f}/s), "
          f"{ok} acknowledged AA, {recorded} recorded; {patients} patients, {visits} visits "
          f"({discharged} discharged)")
    lost = count - min(ok, recorded)
    if (patients, visits, discharged) != (want_patients, want_patients, want_discharged):
        print(f"store does not match the messages: want {want_patients} patients and visits, "
              f"{want_discharged} discharged")
        lost = max(lost, 1)
    print(json.dumps({"messages": count, "connections": args.connections,
                      "echo_msgs_per_s": round(count / echo_s),
                      "listener_msgs_per_s": round(count / listen_s),
                      "ratio_vs_echo": round(echo_s / listen_s, 3), "lost": lost}))


if __name__ == "__main__":
    main()
