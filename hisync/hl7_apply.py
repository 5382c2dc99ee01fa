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
from dataclasses import dataclass, replace

import hl7
from sqlalchemy import Connection, Table, bindparam, delete, insert, or_, select, update

from core.enums import (
    AttemptStatus,
    CancelReason,
    EncounterType,
    RejectReason,
    Sex,
    SyncRunStatus,
    TaskStatus,
)
from core.store.db import Database
from core.store.models import (
    CallAttempt,
    Encounter,
    FollowupTask,
    Hl7Message,
    Patient,
    Ticket,
)
from hisync.dates import zone
from hisync.encoding import encoding_for
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
from hisync.mapping import EntityMapping, HisMapping
from hisync.records import make_reject, summarize
from hisync.rows import ParserConfig, RowParser
from hisync.store_writer import Counts, StoreWriter

# HL7 table 0001 (administrative sex), 0004 (patient class), 0112 (discharge disposition)
HL7_SEX = {"M": Sex.MALE, "F": Sex.FEMALE, "O": Sex.UNKNOWN, "U": Sex.UNKNOWN,
           "A": Sex.UNKNOWN, "N": Sex.UNKNOWN}
HL7_PATIENT_CLASS = {"I": EncounterType.INPATIENT, "B": EncounterType.INPATIENT,
                     "O": EncounterType.OUTPATIENT, "E": EncounterType.OUTPATIENT,
                     "R": EncounterType.OUTPATIENT}
HL7_DISPOSITION = {"01": "home", "02": "transfer", "03": "transfer", "04": "transfer",
                   "05": "transfer", "06": "community", "07": "against_advice",
                   "20": "died"}
PATIENT_COLUMNS = ("his_id", "mrn", "name", "sex", "birth_date", "phone", "phone_alt",
                   "language", "deceased", "sent_at")
ENCOUNTER_COLUMNS = ("his_id", "patient_his_id", "type", "department", "attending_doctor",
                     "admit_at", "discharge_at", "diagnoses", "disposition", "sent_at")
# where each of our fields comes from, for the ERR segment of an AE
HL7_FIELD = {
    ("patients", "his_id"): "PID-3", ("patients", "mrn"): "PID-3",
    ("patients", "name"): "PID-5", ("patients", "sex"): "PID-8",
    ("patients", "birth_date"): "PID-7", ("patients", "phone"): "PID-13",
    ("patients", "phone_alt"): "PID-14", ("patients", "language"): "PID-15",
    ("patients", "deceased"): "PID-30", ("patients", "sent_at"): "MSH-7",
    ("encounters", "his_id"): "PV1-19", ("encounters", "patient_his_id"): "PID-3",
    ("encounters", "type"): "PV1-2", ("encounters", "department"): "PV1-10",
    ("encounters", "attending_doctor"): "PV1-7", ("encounters", "admit_at"): "PV1-44",
    ("encounters", "discharge_at"): "PV1-45", ("encounters", "diagnoses"): "DG1-3",
    ("encounters", "disposition"): "PV1-36", ("encounters", "sent_at"): "MSH-7",
}
# a reason found while writing (not parsing) points at the segment's identifier
_STORE_REASON_FIELD = {RejectReason.MRN_IN_USE: "mrn", RejectReason.UNKNOWN_PATIENT:
                       "patient_his_id", RejectReason.STORE_REFUSED: "his_id"}


MESSAGES: Table = Hl7Message.__table__  # type: ignore[assignment]
# every message reads one and writes one: built once (see dialer.claims)
_SEEN = select(MESSAGES.c.ack_code).where(MESSAGES.c.source == bindparam("s_source"),
                                          MESSAGES.c.control_id == bindparam("s_id"))
_RECORD = insert(MESSAGES)


def hl7_mapping(hospital: HisMapping) -> HisMapping:
    """The mapping an ADT feed is parsed with: our field names as the columns, the
    hospital's departments, time zone and code tables, and HL7's standard codes beside them
    (a feed that sends the HIS's own codes, as many Chinese feeds do, is read too)."""
    def entity(columns: tuple[str, ...]) -> EntityMapping:
        return EntityMapping(table="hl7", key="his_id", watermark="sent_at",
                             fields={c: c for c in columns if c != "sent_at"})

    disposition = {**HL7_DISPOSITION, **(hospital.disposition or {})}
    return hospital.model_copy(update={
        "patients": entity(PATIENT_COLUMNS), "encounters": entity(ENCOUNTER_COLUMNS),
        "sex": {**HL7_SEX, **hospital.sex},
        "encounter_type": {**HL7_PATIENT_CLASS, **hospital.encounter_type},
        "disposition": disposition})


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

    def open(self, now: dt.datetime) -> None:
        """Start the feed's run (its counts and quarantine hang on it)."""
        self._writer.ensure_departments(self._mapping.departments.values())
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
        if not self._parsers or self._config.today != today:
            self._config = replace(self._config, today=today)
            self._parsers = {e: RowParser(self._config, e) for e in ("patients", "encounters")}
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
        with self._db.engine.begin() as conn:
            seen = conn.execute(_SEEN, {"s_source": self.source,
                                        "s_id": message.control_id[:64]}).scalar_one_or_none()
            if seen is not None:
                code = AckCode(seen)
                return Applied(ack_for(tree, code, None), code, message.control_id)
            error = self._apply(conn, message, now)
            code = AckCode.ACCEPT if error is None else error.ack
            conn.execute(_RECORD, {"source": self.source,
                                   "control_id": message.control_id[:64],
                                   "event": message.event.value, "ack_code": code.value,
                                   "received_at": now,
                                   "detail": str(error)[:512] if error else None})
        return Applied(ack_for(tree, code, error), code, message.control_id)

    def keep_truncated(self, frame: bytes, now: dt.datetime) -> None:
        """A message cut off before its end block: kept; no answer can reach its sender."""
        text = frame.decode("utf-8", "replace")
        self._quarantine_raw(frame, text, Hl7Error(
            "MLLP", "the connection closed before the message's end block"), now)

    def _apply(self, conn: Connection, m: AdtMessage, now: dt.datetime) -> Hl7Error | None:
        """Write the patient, then the visit; the first field refused, as an Hl7Error."""
        error = self._write(conn, "patients", PATIENT_COLUMNS, m.patient, now)
        if error is None and m.prior_patient_id is not None:
            error = self._merge(conn, m.patient["his_id"] or "", m.prior_patient_id, now)
        if error is not None or m.encounter is None:
            return error
        if m.event is AdtEvent.CANCEL_ADMIT:
            self._cancel_admission(conn, m.encounter["his_id"] or "", now)
            return None
        error = self._write(conn, "encounters", ENCOUNTER_COLUMNS, m.encounter, now)
        if error is None and m.event is AdtEvent.CANCEL_DISCHARGE:
            self._cancel_pending(conn, m.encounter["his_id"] or "", now)
        return error

    def _write(self, conn: Connection, entity: str, columns: tuple[str, ...],
               raw: dict[str, str | None], now: dt.datetime) -> Hl7Error | None:
        assert self._run_id is not None
        row = tuple(raw.get(c) for c in columns)
        parsed = summarize(self._parsers_for(now)[entity].parse_batch([row]))
        done = self._writer.write_in(conn, entity, columns, [row], parsed, None, self._run_id,
                                     now)
        self.counts.add(done)
        if parsed.rejects:
            bad = parsed.rejects[0]
            return Hl7Error(HL7_FIELD.get((entity, bad.field), bad.field), bad.detail)
        if done.rejected:
            reason = RejectReason(next(iter(done.by_reason)))
            field = _STORE_REASON_FIELD.get(reason, "his_id")
            return Hl7Error(HL7_FIELD[(entity, field)], f"{reason.value}: see the quarantine")
        return None

    def _cancel_pending(self, conn: Connection, visit: str, now: dt.datetime) -> None:
        """A discharge taken back: the follow-ups planned from it must not call."""
        encounter_id = conn.execute(select(Encounter.id).where(
            Encounter.his_id == visit)).scalar_one_or_none()
        if encounter_id is None:
            return
        conn.execute(update(FollowupTask).where(
            FollowupTask.encounter_id == encounter_id,
            FollowupTask.status == TaskStatus.PENDING).values(
            status=TaskStatus.CANCELLED, cancel_reason=CancelReason.NO_LONGER_PLANNED,
            closed_at=now, updated_at=now))

    def _merge(self, conn: Connection, survivor: str, prior: str, now: dt.datetime
               ) -> Hl7Error | None:
        """Move everything of `prior` to `survivor` (HIS ids)."""
        if prior == survivor:
            return None
        ids = dict(conn.execute(select(Patient.his_id, Patient.id).where(
            Patient.his_id.in_([survivor, prior]))).all())
        if prior not in ids:
            return None  # never synced here: nothing to move
        old, new = ids[prior], ids[survivor]
        live = conn.execute(select(CallAttempt.id).where(
            CallAttempt.patient_id == old,
            CallAttempt.status.in_([AttemptStatus.DIALING, AttemptStatus.IN_CALL])
        ).limit(1)).first() or conn.execute(select(FollowupTask.id).where(
            FollowupTask.patient_id == old, FollowupTask.status == TaskStatus.CLAIMED
        ).limit(1)).first()
        if live is not None:
            return Hl7Error("MRG-1", f"patient {prior} has a call in progress; send the "
                            "merge again when it has ended")
        for table in (Encounter, FollowupTask, CallAttempt, Ticket):
            conn.execute(update(table).where(table.patient_id == old)
                         .values(patient_id=new))
        flags = conn.execute(select(Patient.deceased, Patient.opt_out_phone,
                                    Patient.opt_out_sms).where(Patient.id == old)).one()
        conn.execute(update(Patient).where(Patient.id == new).values(
            deceased=or_(Patient.deceased, flags.deceased),
            opt_out_phone=or_(Patient.opt_out_phone, flags.opt_out_phone),
            opt_out_sms=or_(Patient.opt_out_sms, flags.opt_out_sms),
            plan_dirty=True, updated_at=now))
        conn.execute(update(Patient).where(Patient.id == old).values(
            merged_into_id=new, plan_dirty=True, updated_at=now))
        return None

    def _cancel_admission(self, conn: Connection, visit: str, now: dt.datetime) -> None:
        """An admission that did not happen: a stored visit with no follow-ups goes (it would
        count the patient as in hospital and stop their calls); one with follow-ups keeps
        its history and its pending ones are cancelled."""
        encounter_id = conn.execute(select(Encounter.id).where(
            Encounter.his_id == visit)).scalar_one_or_none()
        if encounter_id is None:
            return
        planned = conn.execute(select(FollowupTask.id).where(
            FollowupTask.encounter_id == encounter_id).limit(1)).first()
        if planned is None:
            conn.execute(delete(Encounter).where(Encounter.id == encounter_id))
            return
        self._cancel_pending(conn, visit, now)

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
        self.counts.read += 1
        self.counts.rejected += 1
