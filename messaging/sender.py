"""The sender: drains the store's queued messages through one gateway and records what
the gateway answers, reports and forwards.

One pass (`drain_once`):
1. claim the due messages (QUEUED, `next_try_at` passed) by moving their `next_try_at` a
   lease ahead in one conditional UPDATE: two senders on one store never both take one;
   a sender that dies leaves its claimed messages to be taken again when the lease ends
   (a crash between the gateway's answer and our write can send one message twice; a
   message is never lost);
2. ask `core.sms.hold_back` again at send time: opted out or deceased since it was queued
   -> BLOCKED; outside the window or over the patient's daily cap -> waits for the next
   window;
3. submit the rest, several in flight, under the gateway's throughput cap (parts per
   second); ACCEPTED -> SUBMITTED with one `SmsPart` per id; TEMPORARY -> retried with
   exponential backoff, FAILED after `max_tries`; PERMANENT -> FAILED with the words.

Delivery reports and inbound messages arrive through `GatewayEvents` and are written in
batches (`flush`): a report is kept whatever it says (`SmsReceipt`), matched to its part by
the gateway's id (a report that outruns its submit's answer is matched when the part is
written), and a final state settles the message: DELIVERED when every part is, FAILED when
one part fails.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.audit import AuditLog
from core.clock import Clock
from core.enums import MessageStatus
from core.sms import SmsPolicy, hold_back
from core.store.db import Database
from core.store.models import Patient, SmsMessage, SmsPart, SmsReceipt
from core.tickets import ResponseTimes
from messaging import inbound
from messaging.gateway import (
    DeliveryReport,
    DeliveryState,
    InboundSms,
    OutgoingSms,
    SmsGateway,
    SubmitResult,
    SubmitStatus,
)

log = logging.getLogger(__name__)
DETAIL_MAX = 256


@dataclass(frozen=True)
class SenderOptions:
    max_per_second: float = 20.0  # parts per second through this gateway
    retry: dt.timedelta = dt.timedelta(seconds=60)  # first wait after a temporary failure
    retry_max: dt.timedelta = dt.timedelta(hours=1)
    max_tries: int = 6
    batch: int = 200  # messages claimed per pass
    in_flight: int = 32  # submits awaiting their answer at once
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


@dataclass
class _Claimed:
    message: SmsMessage
    patient: Patient


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

    # -- GatewayEvents ---------------------------------------------------------------------
    def delivery_report(self, report: DeliveryReport) -> None:
        self._reports.append(report)
        self._arrived.set()

    def inbound(self, message: InboundSms) -> None:
        self._inbound.append(message)
        self._arrived.set()

    # -- the loop -----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event, idle_s: float = 1.0) -> None:
        """Send and record until `stop` is set; looks for due messages every `idle_s`
        when there is nothing to do, and writes reports as they arrive."""
        await self.gateway.start(self)
        try:
            while not stop.is_set():
                sent = await self.drain_once()
                await self.flush()
                if sent == 0:
                    self._arrived.clear()
                    waits = [asyncio.ensure_future(stop.wait()),
                             asyncio.ensure_future(self._arrived.wait())]
                    await asyncio.wait(waits, timeout=idle_s,
                                       return_when=asyncio.FIRST_COMPLETED)
                    for w in waits:
                        w.cancel()
            await self.flush()
        finally:
            await self.gateway.close()

    async def drain_once(self) -> int:
        """One pass over the due messages; returns how many were submitted."""
        claimed = await self.db.call(self._claim)
        if not claimed:
            return 0
        gate = asyncio.Semaphore(self.options.in_flight)

        async def submit(c: _Claimed) -> tuple[_Claimed, SubmitResult]:
            async with gate:
                await self._limit.take(max(1, c.message.segments))
                assert c.message.phone is not None
                result = await self.gateway.submit(
                    OutgoingSms(c.message.id, c.message.phone, c.message.body))
                return c, result

        results = await asyncio.gather(*(submit(c) for c in claimed))
        await self.db.call(self._record, results)
        return sum(1 for _, r in results if r.status is SubmitStatus.ACCEPTED)

    def _claim(self) -> list[_Claimed]:
        now = self.clock.now()
        with self.db.session() as session:
            due = list(session.execute(
                select(SmsMessage.id).where(SmsMessage.status == MessageStatus.QUEUED,
                                            SmsMessage.next_try_at <= now)
                .order_by(SmsMessage.next_try_at, SmsMessage.id)
                .limit(self.options.batch)).scalars())
            if not due:
                return []
            mine = list(session.execute(
                update(SmsMessage).where(SmsMessage.id.in_(due),
                                         SmsMessage.status == MessageStatus.QUEUED,
                                         SmsMessage.next_try_at <= now)
                .values(next_try_at=now + self.options.lease)
                .returning(SmsMessage.id)).scalars())
            if not mine:
                return []
            messages = list(session.execute(
                select(SmsMessage).where(SmsMessage.id.in_(mine))
                .order_by(SmsMessage.id)).scalars())
            patients = {p.id: p for p in session.execute(select(Patient).where(
                Patient.id.in_({m.patient_id for m in messages}))).scalars()}
            out: list[_Claimed] = []
            for message in messages:
                patient = patients[message.patient_id]
                hold = hold_back(session, self.policy, message, patient, now)
                if hold is None:
                    out.append(_Claimed(message, patient))
                elif hold.block is not None:
                    message.status = MessageStatus.BLOCKED
                    message.block_reason = hold.block
                    message.detail = hold.detail or None
                    message.final_at = now
                else:
                    assert hold.until is not None
                    message.next_try_at = hold.until
            return out

    def _record(self, results: Sequence[tuple[_Claimed, SubmitResult]]) -> None:
        now = self.clock.now()
        opts = self.options
        with self.db.session() as session:
            written: list[str] = []
            for claimed, result in results:
                message = session.merge(claimed.message, load=False)
                message.tries += 1
                message.gateway = self.gateway.name
                if result.status is SubmitStatus.ACCEPTED:
                    message.status = MessageStatus.SUBMITTED
                    message.submitted_at = now
                    message.detail = None
                    for n, part_id in enumerate(result.part_ids, start=1):
                        session.add(SmsPart(message_id=message.id, part=n,
                                            gateway=self.gateway.name,
                                            gateway_message_id=part_id))
                    written.extend(result.part_ids)
                elif result.status is SubmitStatus.TEMPORARY and message.tries < opts.max_tries:
                    wait = min(opts.retry_max, opts.retry * 2 ** (message.tries - 1))
                    message.next_try_at = now + wait
                    message.detail = (result.detail or "temporary failure")[:DETAIL_MAX]
                else:
                    message.status = MessageStatus.FAILED
                    message.final_at = now
                    message.detail = (result.detail or "refused")[:DETAIL_MAX]
            session.flush()
            if written:
                self._match_waiting(session, written)

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
        now = self.clock.now()
        name = self.gateway.name
        with self.db.session() as session:
            receipts = []
            for report in reports:
                if report.state is None:
                    log.warning("sms: a delivery report from %s could not be read; kept as "
                                "it came", name)
                receipts.append(SmsReceipt(
                    gateway=name, gateway_message_id=(report.gateway_message_id or None),
                    state=report.state.value if report.state is not None else None,
                    error=(report.error or None), raw=report.raw, received_at=now))
            session.add_all(receipts)
            session.flush()
            ids = [r.gateway_message_id for r in receipts if r.gateway_message_id]
            self._match(session, receipts, ids)
            unmatched = sum(1 for r in receipts if r.part_id is None and r.state is not None)
            if unmatched:
                log.info("sms: %d delivery reports from %s wait for their message", unmatched,
                         name)

    def _match_waiting(self, session: Session, part_ids: Sequence[str]) -> None:
        """Reports that arrived before their submit's answer was written."""
        waiting = list(session.execute(select(SmsReceipt).where(
            SmsReceipt.gateway == self.gateway.name, SmsReceipt.part_id.is_(None),
            SmsReceipt.gateway_message_id.in_(list(part_ids)))).scalars())
        if waiting:
            self._match(session, waiting, [r.gateway_message_id for r in waiting
                                           if r.gateway_message_id])

    def _match(self, session: Session, receipts: Sequence[SmsReceipt],
               ids: Sequence[str]) -> None:
        if not ids:
            return
        parts: dict[str, SmsPart] = {}
        for chunk_start in range(0, len(ids), 500):
            chunk = list(ids[chunk_start:chunk_start + 500])
            for part in session.execute(select(SmsPart).where(
                    SmsPart.gateway == self.gateway.name,
                    SmsPart.gateway_message_id.in_(chunk))).scalars():
                parts[part.gateway_message_id] = part
        touched: set[int] = set()
        for receipt in sorted(receipts, key=lambda r: r.id):
            found = parts.get(receipt.gateway_message_id or "")
            if found is None or receipt.state is None:
                continue
            receipt.part_id = found.id
            found.state = receipt.state
            found.reported_at = receipt.received_at
            touched.add(found.message_id)
        session.flush()
        if touched:
            self._settle(session, touched, receipts)

    def _settle(self, session: Session, message_ids: set[int],
                receipts: Sequence[SmsReceipt]) -> None:
        """A message whose parts all reached a final state is DELIVERED or FAILED."""
        errors = {r.part_id: r.error for r in receipts if r.part_id is not None}
        by_message: dict[int, list[SmsPart]] = {}
        for part in session.execute(select(SmsPart).where(
                SmsPart.message_id.in_(list(message_ids)))).scalars():
            by_message.setdefault(part.message_id, []).append(part)
        messages = session.execute(select(SmsMessage).where(
            SmsMessage.id.in_(list(message_ids)),
            SmsMessage.status == MessageStatus.SUBMITTED)).scalars()
        for message in messages:
            parts = by_message.get(message.id, [])
            states = [DeliveryState(p.state) if p.state else None for p in parts]
            failed = [(p, s) for p, s in zip(parts, states, strict=True)
                      if s is not None and s.final and s is not DeliveryState.DELIVERED]
            if failed:
                part, state = failed[0]
                error = errors.get(part.id)
                message.status = MessageStatus.FAILED
                message.detail = f"{state.value}" + (f" err:{error}" if error else "")
                message.final_at = part.reported_at
            elif len(parts) >= message.segments and all(
                    s is DeliveryState.DELIVERED for s in states):
                message.status = MessageStatus.DELIVERED
                message.final_at = max(p.reported_at for p in parts if p.reported_at)

    def _write_inbound(self, messages: Sequence[InboundSms]) -> None:
        now = self.clock.now()
        with self.db.session() as session:
            for message in messages:
                inbound.handle(session, self.audit, self.gateway.name, message, now,
                               self.options.region, self.response_times)
