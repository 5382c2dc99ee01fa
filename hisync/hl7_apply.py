"""Applying ADT messages to the store, the way the database sync applies HIS rows.

`AdtApplier.apply(frame, now)` (blocking: run it in the store's worker thread) reads one
framed message and returns the acknowledgement to send back:

- a message control id (MSH-10) already applied is acknowledged again with the answer it
  had, and changes nothing (`hl7_messages` keeps every id with its answer);
- the patient (PID) and the visit (PV1, DG1) are parsed by the database sync's own row
  parser over `hl7_mapping(...)`, the hospital's mapping with HL7's standard code tables
  (sex, patient class, discharge disposition) beside its own, and written by the sync's
  store writer: the same validation, department table, MRN check and quarantine. A field
  that fails is answered AE with an ERR segment naming it (PID-3, PV1-10, ...);
- A13 (discharge cancelled) also cancels the follow-ups still pending for that visit;
- A11 (admission cancelled) removes the visit when nothing was planned from it (else it
  keeps its history and its pending follow-ups are cancelled);
- A40 (merge) moves the prior patient's (MRG-1) visits, follow-ups, calls and tickets to
  the surviving one (PID-3), who keeps an opt-out or a death either had; the prior row stays,
  marked merged. While the prior patient has a call in progress it is answered AE (send it
  again later): a call is never moved under its dialer;
- death (PID-30 Y, or a death time in PID-29) marks the patient deceased: the dialer
  cancels their calls at dial time, as for the database sync;
- a message that cannot be read at all is kept raw in the quarantine (entity `hl7`) and
  answered AE (or AR: an event, message type or character set this receiver does not take).
"""

from __future__ import annotations

import base64
import datetime as dt
import threading
from dataclasses import dataclass, replace
from typing import Any

import hl7
from sqlalchemy import Connection, Table, bindparam, insert, select

from core.enums import RejectReason, SyncRunStatus
from core.store.db import Database
from core.store.models import Hl7Message
from hisync.dates import zone
from hisync.encoding import encoding_for, sqlite_datetime
from hisync.hl7_ack import ack_for
from hisync.hl7_adt import (
    AckCode,
    AdtEvent,
    AdtMessage,
    Hl7Error,
    decode,
    parse_hl7,
    read_adt,
)
from hisync.hl7_mapping import (
    ENCOUNTER_COLUMNS,
    HL7_FIELD,
    PATIENT_COLUMNS,
    STORE_REASON_FIELD,
    hl7_mapping,
)
from hisync.hl7_visits import cancel_admission, cancel_pending, merge_patients
from hisync.mapping import HisMapping
from hisync.records import make_reject, summarize
from hisync.rows import ParserConfig, RowParser
from hisync.store_writer import Counts, StoreWriter

MESSAGES: Table = Hl7Message.__table__  # type: ignore[assignment]
# every message reads one receipt and writes one: built once (see dialer.claims); on SQLite
# they go straight to the driver, like the store writer's rows (a third of a message's cost
# was SQLAlchemy's per-statement work)
_SEEN = select(MESSAGES.c.ack_code, MESSAGES.c.detail).where(
    MESSAGES.c.source == bindparam("s_source"), MESSAGES.c.control_id == bindparam("s_id"))
_RECORD = insert(MESSAGES)
_SEEN_SQLITE = "SELECT ack_code, detail FROM hl7_messages WHERE source = ? AND control_id = ?"
_RECORD_SQLITE = ("INSERT INTO hl7_messages (source, control_id, event, ack_code, received_at, "
                  "detail) VALUES (?, ?, ?, ?, ?, ?)")


def _driver(conn: Connection) -> Any:
    """The sqlite3 connection under `conn` (inside its transaction)."""
    raw = conn.connection.driver_connection
    assert raw is not None
    return raw


@dataclass(frozen=True)
class Applied:
    """What one message did: the acknowledgement (bytes to send) and its code."""

    ack: bytes
    code: AckCode
    control_id: str | None


class AdtApplier:
    """Applies ADT messages from one feed (`source`: its id for the quarantine and runs)."""

    def __init__(self, db: Database, hospital: HisMapping, source: str,
                 region: str = "CN", timezone: str = "Asia/Shanghai",
                 language: str = "zh-CN", max_bytes: int = 1024 * 1024) -> None:
        self._db = db
        self.source = source
        self._max_bytes = max_bytes
        self._sqlite = db.dialect == "sqlite"
        self._mapping = hl7_mapping(hospital)
        local = zone(hospital.timezone or timezone)
        assert local is not None, "time zones are validated with the settings and mapping"
        self._zone = local
        self._config = ParserConfig(mapping=self._mapping, region=region, timezone=timezone,
                                    language=language, encoding=encoding_for(db.dialect))
        self._parsers: dict[str, RowParser] = {}
        self._writer = StoreWriter(db, source, bulk=False)
        self._run_id: int | None = None
        self.counts = Counts()
        # PostgreSQL runs several messages at once (one per connection, in worker threads)
        self._lock = threading.Lock()

    def open(self, now: dt.datetime) -> None:
        """Start the feed's run (its counts and quarantine hang on it)."""
        self._writer.ensure_departments(self._mapping.departments.values())
        for entity in ("patients", "encounters"):  # a good message resolves their rejects
            self._writer.load_open_rejects(entity)
        self._run_id = self._writer.begin_run(now)

    def close(self, now: dt.datetime, error: str | None = None) -> None:
        if self._run_id is not None:
            self._writer.finish_run(self._run_id, now, self.counts,
                                    SyncRunStatus.FAILED if error else
                                    SyncRunStatus.COMPLETED, (None, None), error)
            self._run_id = None

    def _parsers_for(self, now: dt.datetime) -> dict[str, RowParser]:
        """The row parsers, bounded by today's date in the hospital's zone (a listener runs
        for months: plausible dates move with the calendar)."""
        today = now.astimezone(self._zone).date()
        with self._lock:
            if not self._parsers or self._config.today != today:
                self._config = replace(self._config, today=today)
                self._parsers = {e: RowParser(self._config, e)
                                 for e in ("patients", "encounters")}
            return self._parsers

    def apply(self, frame: bytes, now: dt.datetime) -> Applied:
        """Apply one framed message; returns the acknowledgement to send."""
        assert self._run_id is not None, "open() first"
        text: str | None = None
        tree: hl7.Message | None = None
        try:
            if len(frame) > self._max_bytes:
                raise Hl7Error("MSH", f"a message of {len(frame)} bytes is larger than "
                               f"this receiver takes ({self._max_bytes})", AckCode.REJECT)
            text = decode(frame)
            tree = parse_hl7(text)
            message = read_adt(tree)
        except Hl7Error as err:
            self._quarantine_raw(frame, text, err, now)
            return Applied(ack_for(tree, err.ack, err), err.ack, None)
        # the message's effects and its receipt commit together: a message answered AA is
        # in the store, and one the store never took is not marked as seen
        control_id = message.control_id[:64]
        with self._db.engine.begin() as conn:
            seen = self._seen(conn, control_id)
            if seen is not None:  # the same answer again, its ERR segment included
                code = AckCode(seen[0])
                field, _, detail = (seen[1] or "").partition(": ")
                again = Hl7Error(field, detail, code) if seen[1] else None
                return Applied(ack_for(tree, code, again), code, message.control_id)
            error = self._apply(conn, message, now)
            code = AckCode.ACCEPT if error is None else error.ack
            receipt = (self.source, control_id, message.event.value, code.value, now,
                       str(error)[:512] if error else None)
            if self._sqlite:
                _driver(conn).execute(_RECORD_SQLITE, (*receipt[:4], sqlite_datetime(now),
                                                       receipt[5]))
            else:
                conn.execute(_RECORD, dict(zip(("source", "control_id", "event", "ack_code",
                                                "received_at", "detail"), receipt,
                                               strict=True)))
        return Applied(ack_for(tree, code, error), code, message.control_id)

    def _seen(self, conn: Connection, control_id: str) -> tuple[str, str | None] | None:
        """The answer a control id already had: (ack code, detail), or None."""
        if self._sqlite:
            row = _driver(conn).execute(_SEEN_SQLITE, (self.source, control_id)).fetchone()
        else:
            row = conn.execute(_SEEN, {"s_source": self.source, "s_id": control_id}).first()
        return None if row is None else (str(row[0]), row[1])

    def keep_truncated(self, frame: bytes, now: dt.datetime) -> None:
        """A message cut off before its end block: kept; no answer can reach its sender."""
        text = frame.decode("utf-8", "replace")
        self._quarantine_raw(frame, text, Hl7Error(
            "MLLP", "the connection closed before the message's end block"), now)

    def _apply(self, conn: Connection, m: AdtMessage, now: dt.datetime) -> Hl7Error | None:
        """Write the patient, then the visit; the first field refused, as an Hl7Error."""
        error = self._write(conn, "patients", PATIENT_COLUMNS, m.patient, now)
        if error is None and m.prior_patient_id is not None:
            error = merge_patients(conn, m.patient["his_id"] or "", m.prior_patient_id, now)
        if error is not None or m.encounter is None:
            return error
        if m.event is AdtEvent.CANCEL_ADMIT:
            cancel_admission(conn, m.encounter["his_id"] or "", now)
            return None
        error = self._write(conn, "encounters", ENCOUNTER_COLUMNS, m.encounter, now)
        if error is None and m.event is AdtEvent.CANCEL_DISCHARGE:
            cancel_pending(conn, m.encounter["his_id"] or "", now)
        return error

    def _write(self, conn: Connection, entity: str, columns: tuple[str, ...],
               raw: dict[str, str | None], now: dt.datetime) -> Hl7Error | None:
        assert self._run_id is not None
        row = tuple(raw.get(c) for c in columns)
        parsed = summarize(self._parsers_for(now)[entity].parse_batch([row]))
        done = self._writer.write_in(conn, entity, columns, [row], parsed, None, self._run_id,
                                     now)
        with self._lock:
            self.counts.add(done)
        if parsed.rejects:
            bad = parsed.rejects[0]
            return Hl7Error(HL7_FIELD.get((entity, bad.field), bad.field), bad.detail)
        if done.rejected:
            reason = RejectReason(next(iter(done.by_reason)))
            field = STORE_REASON_FIELD.get(reason, "his_id")
            return Hl7Error(HL7_FIELD[(entity, field)], f"{reason.value}: see the quarantine")
        return None

    def _quarantine_raw(self, frame: bytes, text: str | None, err: Hl7Error,
                        now: dt.datetime) -> None:
        """Keep a message that could not be read, as it came: as text when it is text (in
        its own character set, else UTF-8), else as base64 of its bytes."""
        assert self._run_id is not None
        if text is None:
            try:
                text = frame.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        raw: dict[str, str | None] = {"message": text} if text is not None else \
            {"message_base64": base64.b64encode(frame).decode("ascii")}
        reject = make_reject("", err.field, RejectReason.INVALID_VALUE, err.detail, raw)
        with self._db.engine.begin() as conn:
            self._writer.quarantine(conn, "hl7", [reject], self._run_id, now)
        with self._lock:
            self.counts.read += 1
            self.counts.rejected += 1
