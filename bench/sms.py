"""Benchmark: SMS through the real SMPP server, the engine's path against the bare library.

    .venv/bin/python bench/sms.py            # 10,000 messages (the issue's size)
    .venv/bin/python bench/sms.py --quick    # 1,000 messages; under a minute

The server is the SMPP tier's (smpp.twisted3 with the tests' SMSC handler, `tests/smsc`,
run from `.venv-smsc`), one process for the whole run, answering each submit with an id
and a delivery report 50 ms later.

Measured path: N messages queued in a SQLite store by `core.sms.queue` (the link
template: one UCS-2 part each, as the engine sends), then drained by the engine's
`messaging.sender.SmsSender` through `messaging.smpp.SmppGateway` (its default in-flight
count, the throughput cap set out of the way): claims, the send-time checks, the submits,
the parts written, the delivery reports written and matched. Its rate is messages per
second from the start to the moment no message is left queued; then it waits for every
report to be matched.

Baseline, in the same run against the same server: smpplib's own blocking `Client`, bound
as a transceiver, sending the same N bodies in a loop (split by smpplib's `make_parts`)
with a reader thread counting the submit_sm_resp (and the reports); its rate is messages
per second from the first send to the last submit's answer. It is timed before and after
the measured path and the mean taken, so drift on this shared 2-core machine hits both.

Beside it, to tell the SMPP side's cost from the sender's and the store's: the adapter
alone (`SmppGateway.submit` on the same bodies, as many in flight as the sender keeps, no
store): `adapter_alone_vs_bare_submit`.

Figures: `ratio_vs_bare_submit` (engine rate / bare rate; target >= 0.8), `lost` (queued
messages that did not reach the SMSC: not SUBMITTED/DELIVERED, checked against the
server's submit count; target 0), `dlr_matched_share` (parts whose delivery report was
matched to them / parts submitted; target 1.0). When `bench/web_questionnaire.py` exposes
`web_answer_p95_ms(quick)`, its figure is merged in as `web_answer_p95_ms`.
The last line printed is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.util
import json
import sys
import threading
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import smpplib.client  # type: ignore[import-untyped]
import smpplib.gsm  # type: ignore[import-untyped]
from sqlalchemy import func, insert, select

from core.audit import AuditLog
from core.clock import FakeClock
from core.enums import MessageStatus, Sex
from core.settings import SmsSettings
from core.sms import SmsPolicy, queue
from core.sms_templates import TEMPLATES
from core.store.db import Database
from core.store.models import Department, Patient, SmsMessage, SmsPart
from messaging.gateway import OutgoingSms
from messaging.sender import SenderOptions, SmsSender
from messaging.smpp import SmppGateway
from tests.audit_key import TEST_AUDIT_KEY
from tests.smsc import PASSWORD, SYSTEM_ID, Smsc, running_smsc, smsc_unavailable

NOW = dt.datetime(2026, 3, 10, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai, inside the window
TZ = "Asia/Shanghai"
POLICY = SmsPolicy(window=SmsPolicy.parse_window("08:00-20:00"), daily_cap=20,
                   hospital={"zh-CN": "示范医院", "en": "Demo Hospital"})
SOURCE = "10690"


def _phone(i: int) -> str:
    return f"+86138{i:08d}"


def _link(i: int) -> str:
    return f"https://fu.example.org/q/{i:012x}"


def seed(db: Database, n: int) -> list[tuple[str, str]]:
    """N patients with a mobile number, one link message queued for each; (to, body)."""
    with db.session() as s:
        s.execute(insert(Department), [{"id": 1, "code": "CARD", "name": "心内科"}])
        s.execute(insert(Patient), [
            {"id": i, "his_id": f"P{i}", "mrn": f"M{i}", "name": f"病人{i}", "sex": Sex.FEMALE,
             "birth_date": dt.date(1960, 1, 1), "phone": _phone(i), "language": "zh-CN",
             "timezone": TZ, "content_hash": "h", "updated_at": NOW, "plan_dirty": False}
            for i in range(1, n + 1)])
    out: list[tuple[str, str]] = []
    with db.session() as s:
        patients = {p.id: p for p in s.execute(select(Patient)).scalars()}
        for i in range(1, n + 1):
            message = queue(s, POLICY, patient=patients[i],
                            template=TEMPLATES["questionnaire_link"],
                            values={"link": _link(i)}, now=NOW, department_id=1)
            assert message.status is MessageStatus.QUEUED, message.block_reason
            out.append((_phone(i), message.body))
    return out


# -- the baseline: smpplib's own client ----------------------------------------------------------
def bare_submit_rate(smsc: Smsc, bodies: list[tuple[str, str]]) -> dict[str, float]:
    client = smpplib.client.Client("127.0.0.1", smsc.smpp_port, allow_unknown_opt_params=True)
    split = [smpplib.gsm.make_parts(body) for _, body in bodies]
    expected = sum(len(parts) for parts, _, _ in split)
    answered = 0
    reports = 0
    done = threading.Event()

    def sent(pdu: Any) -> None:
        nonlocal answered
        answered += 1
        if answered >= expected:
            done.set()

    def received(pdu: Any) -> int:
        nonlocal reports
        reports += 1
        return 0

    client.set_message_sent_handler(sent)
    client.set_message_received_handler(received)
    client.connect()
    client.bind_transceiver(system_id=SYSTEM_ID, password=PASSWORD)

    def read() -> None:
        while not done.is_set() or reports < expected:
            client.read_once()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    started = time.perf_counter()
    for (to, _), (parts, coding, esm_class) in zip(bodies, split, strict=True):
        for part in parts:
            client.send_message(source_addr_ton=0, source_addr_npi=1, source_addr=SOURCE,
                                dest_addr_ton=1, dest_addr_npi=1,
                                destination_addr=to.removeprefix("+"), short_message=part,
                                data_coding=coding, esm_class=esm_class,
                                registered_delivery=True)
    if not done.wait(120):
        raise RuntimeError(f"bare: {answered}/{expected} submits answered in 120 s")
    elapsed = time.perf_counter() - started
    reader.join(60)  # the last reports, so they do not fall into the next phase
    client.unbind()
    client.disconnect()
    return {"rate": len(bodies) / elapsed, "seconds": elapsed, "parts": expected,
            "reports": reports}


# -- the measured path: the engine's sender and store -------------------------------------
async def engine_rate(smsc: Smsc, db: Database, n: int) -> dict[str, float]:
    settings = SmsSettings(gateway="smpp", smpp_port=smsc.smpp_port, smpp_system_id=SYSTEM_ID,
                           smpp_password=PASSWORD, source_addr=SOURCE)
    clock = FakeClock(NOW)
    sender = SmsSender(db, SmppGateway(settings), clock, POLICY, AuditLog(clock, TEST_AUDIT_KEY),
                       SenderOptions(max_per_second=1e9))
    stop = asyncio.Event()
    monitor = Database(db.url)  # its own connection and thread: not in the sender's queue

    def counts() -> dict[str, int]:
        with monitor.session() as s:
            rows = s.execute(select(SmsMessage.status, func.count())
                             .group_by(SmsMessage.status)).all()
            parts = s.execute(select(func.count(), func.count(SmsPart.state))
                              .select_from(SmsPart)).one()
        out = {str(status.value): count for status, count in rows}
        out["parts"], out["parts_reported"] = parts
        return out

    started = time.perf_counter()
    running = asyncio.create_task(sender.run(stop, idle_s=0.05))
    submitted_s = None
    deadline = started + 300
    now_counts: dict[str, int] = {}
    while time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
        now_counts = await monitor.call(counts)
        if submitted_s is None and now_counts.get("queued", 0) == 0:
            submitted_s = time.perf_counter() - started
        if submitted_s is not None and now_counts["parts_reported"] >= now_counts["parts"] \
                and now_counts.get("submitted", 0) == 0:
            break
    stop.set()
    await running
    now_counts = await monitor.call(counts)
    monitor.dispose()
    if submitted_s is None:
        raise RuntimeError(f"engine: messages still queued after 300 s: {now_counts}")
    return {"rate": n / submitted_s, "seconds": submitted_s, **now_counts}


async def adapter_rate(smsc: Smsc, bodies: list[tuple[str, str]],
                       in_flight: int) -> dict[str, float]:
    """The adapter alone (no store): the same bodies through `SmppGateway.submit`,
    `in_flight` at a time like the sender: what the SMPP side costs by itself."""
    settings = SmsSettings(gateway="smpp", smpp_port=smsc.smpp_port, smpp_system_id=SYSTEM_ID,
                           smpp_password=PASSWORD, source_addr=SOURCE)

    class Count:
        reports = 0

        def delivery_report(self, report: object) -> None:
            self.reports += 1

        def inbound(self, message: object) -> None:
            pass

    events = Count()
    gateway = SmppGateway(settings)
    await gateway.start(events)
    gate = asyncio.Semaphore(in_flight)

    async def one(i: int, to: str, body: str) -> int:
        async with gate:
            return len((await gateway.submit(OutgoingSms(i, to, body))).part_ids)

    started = time.perf_counter()
    parts = sum(await asyncio.gather(*(one(i, to, body)
                                       for i, (to, body) in enumerate(bodies))))
    elapsed = time.perf_counter() - started
    for _ in range(1200):  # the last reports (60 s at most), before the next phase
        if events.reports >= parts:
            break
        await asyncio.sleep(0.05)
    await gateway.close()
    return {"rate": len(bodies) / elapsed, "parts": parts}


def web_figure(quick: bool) -> float | None:
    path = Path(__file__).with_name("web_questionnaire.py")
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("bench_web_questionnaire", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    measure = getattr(module, "web_answer_p95_ms", None)
    return float(measure(quick)) if callable(measure) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 messages")
    parser.add_argument("-n", type=int, default=None, help="messages (default 10,000)")
    args = parser.parse_args()
    n = args.n or (1_000 if args.quick else 10_000)
    reason = smsc_unavailable()
    if reason is not None:
        print(f"SMPP server unavailable, nothing measured: {reason}")
        print(json.dumps({"skipped": reason}))
        return
    with TemporaryDirectory() as tmp, running_smsc() as smsc:
        db = Database(f"sqlite:///{Path(tmp) / 'store.sqlite'}")
        db.migrate()
        t = time.perf_counter()
        bodies = seed(db, n)
        print(f"{n} messages queued in {time.perf_counter() - t:.1f} s "
              f"({sum(1 for _, b in bodies if len(b) > 70)} of more than one part)")
        before = bare_submit_rate(smsc, bodies)
        print(f"bare smpplib (before): {before['rate']:.0f} msg/s "
              f"({before['parts']:.0f} parts in {before['seconds']:.2f} s)")
        submits_before = smsc.control(op="stats")["submits"]
        ours = asyncio.run(engine_rate(smsc, db, n))
        server_took = smsc.control(op="stats")["submits"] - submits_before
        print(f"engine (SmsSender + SmppGateway + SQLite): {ours['rate']:.0f} msg/s "
              f"(all submitted in {ours['seconds']:.2f} s); statuses "
              f"{ {k: v for k, v in ours.items() if k not in ('rate', 'seconds')} }; "
              f"the server took {server_took} submits")
        alone = asyncio.run(adapter_rate(smsc, bodies, SenderOptions().in_flight))
        print(f"SmppGateway alone (no store, {SenderOptions().in_flight} in flight): "
              f"{alone['rate']:.0f} msg/s")
        after = bare_submit_rate(smsc, bodies)
        print(f"bare smpplib (after): {after['rate']:.0f} msg/s")
        db.dispose()
    bare = (before["rate"] + after["rate"]) / 2
    reached = int(ours.get("submitted", 0) + ours.get("delivered", 0))
    lost = max(n - reached, int(ours["parts"]) - server_took)
    figures: dict[str, Any] = {
        "messages": n,
        "bare_msg_per_s": round(bare, 1),
        "engine_msg_per_s": round(ours["rate"], 1),
        "ratio_vs_bare_submit": round(ours["rate"] / bare, 3),
        "adapter_alone_vs_bare_submit": round(alone["rate"] / bare, 3),
        "lost": lost,
        "dlr_matched_share": round(ours["parts_reported"] / ours["parts"], 4)
        if ours["parts"] else 0.0,
    }
    web = web_figure(args.quick)
    if web is not None:
        figures["web_answer_p95_ms"] = web
    print("ratio_vs_bare_submit target >= 0.8; lost target 0; dlr_matched_share target 1.0"
          + ("" if web is not None else "; web_answer_p95_ms: bench/web_questionnaire.py "
             "does not expose web_answer_p95_ms(quick) yet"))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
