"""Delivery reports in the store: each kept as it came, matched to the part its gateway id
names, and the message settled once its parts are final: DELIVERED when every part is,
FAILED when one part fails (with that part's state and error).

A report that outruns its submit's answer is kept unmatched and matched when the part is
written (`match_waiting`). A message its sender submitted as one part (`single`) is
settled by its final report without reading its parts back.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert, select, update

from core.enums import MessageStatus
from core.store.models import SmsMessage, SmsPart, SmsReceipt
from messaging.gateway import DeliveryReport, DeliveryState

log = logging.getLogger(__name__)
MESSAGES: Table = SmsMessage.__table__  # type: ignore[assignment]
PARTS: Table = SmsPart.__table__  # type: ignore[assignment]
RECEIPTS: Table = SmsReceipt.__table__  # type: ignore[assignment]
_CHUNK = 500  # ids per IN (...)


def _settled(message_id: int, state: DeliveryState, error: str | None,
             at: dt.datetime) -> dict[str, Any]:
    """A message's final row values from its (last or failing) part's final state."""
    if state is DeliveryState.DELIVERED:
        return {"mid": message_id, "status": MessageStatus.DELIVERED, "detail": None, "at": at}
    return {"mid": message_id, "status": MessageStatus.FAILED, "at": at,
            "detail": state.value + (f" err:{error}" if error else "")}


def _chunks(values: Sequence[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield list(values[start:start + _CHUNK])


class Receipts:
    """The reports of one gateway (by its name). Called from one store thread at a time."""

    def __init__(self, gateway: str) -> None:
        self.name = gateway
        # messages submitted as one part and not settled yet
        self.single: set[int] = set()

    def _parts(self, conn: Connection, ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        """The parts with these gateway ids: gateway id -> (part id, message id)."""
        p = PARTS.c
        out: dict[str, tuple[int, int]] = {}
        for chunk in _chunks(sorted(set(ids))):
            for part_id, message_id, gateway_id in conn.execute(
                    select(p.id, p.message_id, p.gateway_message_id).where(
                        p.gateway == self.name, p.gateway_message_id.in_(chunk))):
                out[gateway_id] = (part_id, message_id)
        return out

    def write(self, conn: Connection, reports: Sequence[DeliveryReport],
              now: dt.datetime) -> None:
        """Keep every report as it came (`SmsReceipt`), matched to its part when the part
        is written, and settle the messages whose parts are all final."""
        name = self.name
        parts = self._parts(conn, [r.gateway_message_id for r in reports
                                   if r.gateway_message_id])
        rows: list[dict[str, Any]] = []
        for report in reports:
            if report.state is None:
                log.warning("sms: a delivery report from %s could not be read; kept as "
                            "it came", name)
            found = parts.get(report.gateway_message_id or "")
            rows.append({
                "gateway": name, "gateway_message_id": report.gateway_message_id or None,
                "state": report.state.value if report.state is not None else None,
                "error": report.error or None, "raw": report.raw, "received_at": now,
                "part_id": found[0] if found is not None and report.state is not None
                else None})
        conn.execute(insert(RECEIPTS), rows)
        unmatched = sum(1 for r in rows if r["part_id"] is None and r["state"] is not None)
        if unmatched:
            log.info("sms: %d delivery reports from %s wait for their message", unmatched,
                     name)
        by_part = {part_id: message_id for part_id, message_id in parts.values()}
        self._apply(conn, [(r["part_id"], by_part[r["part_id"]], r["state"], r["error"], now)
                           for r in rows if r["part_id"] is not None])

    def match_waiting(self, conn: Connection, gateway_ids: Sequence[str]) -> None:
        """Reports that arrived before their submit's answer was written."""
        r = RECEIPTS.c
        waiting: list[Any] = []
        for chunk in _chunks(gateway_ids):
            waiting.extend(conn.execute(
                select(r.id, r.gateway_message_id, r.state, r.error, r.received_at)
                .where(r.gateway == self.name, r.part_id.is_(None),
                       r.state.is_not(None), r.gateway_message_id.in_(chunk))
                .order_by(r.id)).all())
        if not waiting:
            return
        parts = self._parts(conn, [w.gateway_message_id for w in waiting])
        matched = [(w, parts[w.gateway_message_id]) for w in waiting
                   if w.gateway_message_id in parts]
        if matched:
            conn.execute(update(RECEIPTS).where(r.id == bindparam("rid")).values(
                part_id=bindparam("pid")), [{"rid": w.id, "pid": found[0]}
                                           for w, found in matched])
            self._apply(conn, [(found[0], found[1], w.state, w.error, w.received_at)
                               for w, found in matched])

    def _apply(self, conn: Connection,
               reported: Sequence[tuple[int, int, str, str | None, dt.datetime]]) -> None:
        """Record each (part, its message, state, error, when) on its part, then settle
        the messages whose parts all reached a final state: DELIVERED, or FAILED when one
        part failed."""
        if not reported:
            return
        p = PARTS.c
        conn.execute(update(PARTS).where(p.id == bindparam("pid")).values(
            state=bindparam("state"), reported_at=bindparam("at")),
            [{"pid": pid, "state": state, "at": at} for pid, _, state, _, at in reported])
        errors = {pid: error for pid, _, _, error, _ in reported}
        m = MESSAGES.c
        settled: list[dict[str, Any]] = []
        rest: set[int] = set()
        for _, mid, state, error, at in reported:
            if mid not in self.single:
                rest.add(mid)
            elif DeliveryState(state).final:
                # submitted by this sender as one part, still SUBMITTED: settled here
                self.single.discard(mid)
                settled.append(_settled(mid, DeliveryState(state), error, at))
        by_message: dict[int, list[tuple[int, str | None, dt.datetime | None]]] = {}
        submitted: set[int] = set()
        for chunk in _chunks(sorted(rest)):
            submitted.update(conn.execute(select(m.id).where(
                m.id.in_(chunk), m.status == MessageStatus.SUBMITTED)).scalars())
            for pid, mid, state, at in conn.execute(select(
                    p.id, p.message_id, p.state, p.reported_at).where(p.message_id.in_(chunk))):
                by_message.setdefault(mid, []).append((pid, state, at))
        for mid in submitted:
            rows = by_message.get(mid, [])
            states = [(pid, DeliveryState(state) if state else None, at)
                      for pid, state, at in rows]
            failed = [(pid, st, at) for pid, st, at in states
                      if st is not None and st.final and st is not DeliveryState.DELIVERED]
            if failed:
                pid, st, when = failed[0]
                assert st is not None and when is not None
                settled.append(_settled(mid, st, errors.get(pid), when))
            elif rows and all(st is DeliveryState.DELIVERED for _, st, _ in states):
                # every id the gateway answered (written together): one per segment, or
                # one for the whole message from a gateway that reports it as one
                settled.append(_settled(mid, DeliveryState.DELIVERED, None,
                                        max(at for _, _, at in states if at is not None)))
        if settled:
            conn.execute(update(MESSAGES).where(m.id == bindparam("mid")).values(
                status=bindparam("status"), final_at=bindparam("at"),
                detail=bindparam("detail")), settled)
