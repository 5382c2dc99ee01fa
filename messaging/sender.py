"""The sender: drains the store's queued messages through one gateway and records what
the gateway answers, reports and forwards.

One pass (`drain_once`):
1. claim the due messages (QUEUED, `next_try_at` passed) by moving their `next_try_at` a
   lease ahead in one conditional UPDATE: two senders on one store never both take one;
   a sender that dies leaves its claimed messages to be taken again when the lease ends
   (a crash between the gateway's answer and our write can send one message twice; a
   message is never lost);
2. ask `core.sms.hold_back` again at send time, for the whole batch at once: opted out or
   deceased since it was queued -> BLOCKED; outside the window or over the patient's daily
   cap -> waits for the next window;
3. submit the rest, several in flight, under the gateway's throughput cap (parts per
   second); ACCEPTED -> SUBMITTED with one `SmsPart` per id; TEMPORARY -> retried with
   exponential backoff, FAILED after `max_tries`; PERMANENT -> FAILED with the words.

`run` keeps the gateway busy while the store works (see its docstring). The store work is
Core statements run in batches (`executemany`): on SQLite it shares one thread with every
other store call of the process, and per-row ORM work would be the bottleneck.

Delivery reports and inbound messages arrive through `GatewayEvents` and are written in
batches (`flush`): reports by `messaging.receipts` (kept whatever they say, matched to
their part by the gateway's id, settling the message), inbound messages by
`messaging.inbound`. A message's parts are the ids its gateway answered: one per segment (SMPP),
or one for the whole message (Tencent Cloud SMS bills the segments, reports the message).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from core.audit import AuditLog
from core.clock import Clock
from core.enums import MessageStatus
from core.sms import Due, SmsPolicy, hold_back
from core.sms_templates import TEMPLATES
from core.store.db import Database
from core.store.models import Patient
from core.tickets import ResponseTimes
from messaging import inbound
from messaging.gateway import (
    DeliveryReport,
    InboundSms,
    OutgoingSms,
    SmsGateway,
    SubmitResult,
    SubmitStatus,
)
from messaging.receipts import MESSAGES, PARTS, Receipts

log = logging.getLogger(__name__)
DETAIL_MAX = 256
WRITE_EVERY_S = 0.05  # how often `run` records answers and reports


@dataclass(frozen=True)
class SenderOptions:
    max_per_second: float = 20.0  # parts per second through this gateway
    retry: dt.timedelta = dt.timedelta(seconds=60)  # first wait after a temporary failure
    retry_max: dt.timedelta = dt.timedelta(hours=1)
    max_tries: int = 6
    batch: int = 500  # messages claimed per pass
    in_flight: int = 64  # submits awaiting their answer at once (the SMPP window)
    lease: dt.timedelta = dt.timedelta(minutes=5)
    region: str = "CN"  # for reading the numbers inbound messages come from


class RateLimit:
    """At most `per_second` units, spaced evenly (a carrier counts PDUs per second)."""

    def __init__(self, per_second: float) -> None:
        self._gap = 1.0 / per_second
        self._next = 0.0

    async def take(self, units: int = 1) -> None:
        now = time.monotonic()
        start = max(now, self._next)
        self._next = start + units * self._gap
        if start > now:
            await asyncio.sleep(start - now)


@dataclass(frozen=True, slots=True)
class _Claimed:
    message_id: int
    phone: str
    body: str
    segments: int
    tries: int
    template: str
    locale: str


def _outgoing(c: _Claimed) -> OutgoingSms:
    """The message as the gateway takes it: the body, and for a gateway that sends its own
    approved copy of each template (Tencent Cloud SMS), the template's key and its values,
    read back from the body (the row keeps the body, not the values)."""
    template = TEMPLATES.get(c.template)
    return OutgoingSms(c.message_id, c.phone, c.body, template=c.template,
                       params=template.params(c.locale, c.body) if template else None)


async def _first(*waits: Awaitable[Any], within_s: float) -> None:
    """Until the first of `waits` is done, at most `within_s` seconds."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    await asyncio.wait(tasks, timeout=within_s, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        task.cancel()


class SmsSender:
    """Sends through one gateway; is the gateway's `GatewayEvents`."""

    def __init__(self, db: Database, gateway: SmsGateway, clock: Clock, policy: SmsPolicy,
                 audit: AuditLog, options: SenderOptions | None = None,
                 response_times: ResponseTimes | None = None) -> None:
        self.db = db
        self.gateway = gateway
        self.clock = clock
        self.policy = policy
        self.audit = audit
        self.options = options or SenderOptions()
        self.response_times = response_times or ResponseTimes()
        self._limit = RateLimit(self.options.max_per_second)
        self._reports: list[DeliveryReport] = []
        self._inbound: list[InboundSms] = []
        self._arrived = asyncio.Event()
        self._receipts = Receipts(gateway.name)

    # -- GatewayEvents ---------------------------------------------------------------------
    def delivery_report(self, report: DeliveryReport) -> None:
        self._reports.append(report)
        self._arrived.set()

    def inbound(self, message: InboundSms) -> None:
        self._inbound.append(message)
        self._arrived.set()

    # -- the loop -----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event, idle_s: float = 1.0) -> None:
        """Send and record until `stop` is set.

        Three loops share the work so the gateway never waits for the store: the feeder
        claims batches while fewer than half a batch wait to go (and looks again
        every `idle_s` when nothing is due), `in_flight` submitters keep the gateway's
        window full, and the writer records the answers and the reports that arrived,
        every few tens of milliseconds, one store call at a time. On `stop` the messages
        already claimed are submitted and everything is written before it returns."""
        await self.gateway.start(self)
        work: asyncio.Queue[_Claimed] = asyncio.Queue()
        answered: list[tuple[_Claimed, SubmitResult]] = []

        async def feed() -> None:
            while not stop.is_set():
                if work.qsize() < max(self.options.in_flight, self.options.batch // 2):
                    claimed = await self.db.call(self._claim)
                    for c in claimed:
                        work.put_nowait(c)
                    if claimed:
                        continue
                await _first(stop.wait(), self._arrived.wait(), within_s=idle_s)
                self._arrived.clear()

        async def submit() -> None:
            while True:
                c = await work.get()
                try:
                    await self._limit.take(max(1, c.segments))
                    answered.append((c, await self.gateway.submit(_outgoing(c))))
                finally:
                    work.task_done()

        async def write() -> None:
            batch = answered[:]
            del answered[:len(batch)]
            if batch:
                await self.db.call(self._record, batch)
            await self.flush()

        async def writer() -> None:
            while not stop.is_set():
                await asyncio.sleep(WRITE_EVERY_S)
                await write()

        submitters = [asyncio.create_task(submit()) for _ in range(self.options.in_flight)]
        feeding = asyncio.create_task(feed())
        writing = asyncio.create_task(writer())
        try:
            await feeding
            await work.join()  # what was claimed goes out
            await writing
            await write()
        finally:
            for task in (*submitters, feeding, writing):
                task.cancel()
            await self.gateway.close()

    async def drain_once(self) -> int:
        """One pass over the due messages; returns how many were submitted."""
        claimed = await self.db.call(self._claim)
        return await self._send(claimed) if claimed else 0

    async def _send(self, claimed: Sequence[_Claimed]) -> int:
        gate = asyncio.Semaphore(self.options.in_flight)

        async def submit(c: _Claimed) -> tuple[_Claimed, SubmitResult]:
            async with gate:
                await self._limit.take(max(1, c.segments))
                return c, await self.gateway.submit(_outgoing(c))

        results = await asyncio.gather(*(submit(c) for c in claimed))
        await self.db.call(self._record, results)
        return sum(1 for _, r in results if r.status is SubmitStatus.ACCEPTED)

    def _claim(self) -> list[_Claimed]:
        now = self.clock.now()
        m = MESSAGES.c
        with self.db.connection() as conn:
            due = (select(m.id).where(m.status == MessageStatus.QUEUED, m.next_try_at <= now)
                   .order_by(m.next_try_at, m.id).limit(self.options.batch))
            mine = list(conn.execute(
                update(MESSAGES).where(m.id.in_(due.scalar_subquery()),
                                       m.status == MessageStatus.QUEUED, m.next_try_at <= now)
                .values(next_try_at=now + self.options.lease).returning(m.id)).scalars())
            if not mine:
                return []
            rows = conn.execute(
                select(m.id, m.patient_id, m.phone, m.body, m.segments, m.tries, m.expires_at,
                       m.template, m.locale, Patient.deceased, Patient.opt_out_sms,
                       Patient.timezone)
                .join(Patient, Patient.id == m.patient_id)
                .where(m.id.in_(mine)).order_by(m.id)).all()
            holds = hold_back(conn, self.policy, [
                Due(r.id, r.patient_id, r.phone, r.expires_at, r.deceased, r.opt_out_sms,
                    r.timezone) for r in rows], now)
            blocked = [{"mid": mid, "block": h.block, "detail": h.detail or None}
                       for mid, h in holds.items() if h.block is not None]
            waiting = [{"mid": mid, "until": h.until}
                       for mid, h in holds.items() if h.block is None]
            if blocked:
                conn.execute(update(MESSAGES).where(m.id == bindparam("mid")).values(
                    status=MessageStatus.BLOCKED, block_reason=bindparam("block"),
                    detail=bindparam("detail"), final_at=now), blocked)
            if waiting:
                conn.execute(update(MESSAGES).where(m.id == bindparam("mid")).values(
                    next_try_at=bindparam("until")), waiting)
            return [_Claimed(r.id, r.phone, r.body, r.segments, r.tries, r.template, r.locale)
                    for r in rows if r.id not in holds]

    def _record(self, results: Sequence[tuple[_Claimed, SubmitResult]]) -> None:
        now = self.clock.now()
        opts = self.options
        name = self.gateway.name
        m = MESSAGES.c
        submitted: list[dict[str, Any]] = []
        parts: list[dict[str, Any]] = []
        retried: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        for claimed, result in results:
            tries = claimed.tries + 1
            if result.status is SubmitStatus.ACCEPTED:
                submitted.append({"mid": claimed.message_id, "tries": tries})
                parts.extend({"message_id": claimed.message_id, "part": n, "gateway": name,
                              "gateway_message_id": part_id}
                             for n, part_id in enumerate(result.part_ids, start=1))
            elif result.status is SubmitStatus.TEMPORARY and tries < opts.max_tries:
                retried.append({"mid": claimed.message_id, "tries": tries,
                                "until": now + min(opts.retry_max, opts.retry * 2 ** (tries - 1)),
                                "detail": (result.detail or "temporary failure")[:DETAIL_MAX]})
            else:
                failed.append({"mid": claimed.message_id, "tries": tries,
                               "detail": (result.detail or "refused")[:DETAIL_MAX]})
        by_id = m.id == bindparam("mid")
        with self.db.connection() as conn:
            if submitted:
                conn.execute(update(MESSAGES).where(by_id).values(
                    status=MessageStatus.SUBMITTED, submitted_at=now, gateway=name, detail=None,
                    tries=bindparam("tries")), submitted)
            if parts:
                conn.execute(insert(PARTS), parts)
                self._receipts.match_waiting(conn, [p["gateway_message_id"] for p in parts])
            if retried:
                conn.execute(update(MESSAGES).where(by_id).values(
                    gateway=name, tries=bindparam("tries"), next_try_at=bindparam("until"),
                    detail=bindparam("detail")), retried)
            if failed:
                conn.execute(update(MESSAGES).where(by_id).values(
                    status=MessageStatus.FAILED, final_at=now, gateway=name,
                    tries=bindparam("tries"), detail=bindparam("detail")), failed)
        for claimed, result in results:
            if result.status is SubmitStatus.ACCEPTED and len(result.part_ids) == 1:
                self._receipts.single.add(claimed.message_id)

    # -- what arrives ---------------------------------------------------------------------------
    async def flush(self) -> None:
        """Write the delivery reports and inbound messages that arrived since the last
        flush (one transaction each kind)."""
        reports, self._reports = self._reports, []
        messages, self._inbound = self._inbound, []
        if reports:
            await self.db.call(self._write_reports, reports)
        if messages:
            await self.db.call(self._write_inbound, messages)

    def _write_reports(self, reports: Sequence[DeliveryReport]) -> None:
        with self.db.connection() as conn:
            self._receipts.write(conn, reports, self.clock.now())

    def _write_inbound(self, messages: Sequence[InboundSms]) -> None:
        now = self.clock.now()
        with self.db.session() as session:
            for message in messages:
                inbound.handle(session, self.audit, self.gateway.name, message, now,
                               self.options.region, self.response_times)
