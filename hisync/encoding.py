"""Records encoded for the store, done in the parse workers so the writer only copies.

Two encodings:

- `sqlite`: the exact text/integers SQLAlchemy itself stores on SQLite (naive-UTC
  `YYYY-MM-DD HH:MM:SS.ffffff` datetimes, ISO dates, 0/1 booleans, enum values, `json.dumps`
  lists), so the writer can hand tuples straight to the DBAPI `executemany`. A unit test
  holds this to what SQLAlchemy writes for the same record.
- `generic`: typed Python values for SQLAlchemy Core statements (PostgreSQL and the rest).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, Literal

from core.clock import UTC
from hisync.records import EncounterRecord, PatientRecord

Encoding = Literal["sqlite", "generic"]

PATIENT_COLUMNS: tuple[str, ...] = (
    "his_id", "mrn", "name", "sex", "birth_date", "phone", "phone_alt", "language", "timezone",
    "deceased", "opt_out_phone", "opt_out_sms", "consent_phone", "consent_sms",
    "voicemail_ok",
)
ENCOUNTER_COLUMNS: tuple[str, ...] = (
    "his_id", "type", "attending_doctor", "admit_at", "discharge_at", "diagnoses", "procedures",
    "disposition",
)


_PLAIN = re.compile(r"[A-Za-z0-9.+\-]*")


def json_list(items: tuple[str, ...]) -> str:
    """`json.dumps(list(items))`, byte for byte, without its cost for plain codes."""
    if not items:
        return "[]"
    if all(map(_PLAIN.fullmatch, items)):
        return '["' + '", "'.join(items) + '"]'
    return json.dumps(list(items))


def encoding_for(dialect: str) -> Encoding:
    return "sqlite" if dialect == "sqlite" else "generic"


def sqlite_datetime(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]  # drop the "+00:00"


def encode_patient(rec: PatientRecord, encoding: Encoding) -> tuple[Any, ...]:
    if encoding == "generic":
        return tuple(rec)
    birth = rec.birth_date.isoformat() if rec.birth_date is not None else None
    return (rec.his_id, rec.mrn, rec.name, rec.sex.value, birth, rec.phone, rec.phone_alt,
            rec.language, rec.timezone, int(rec.deceased), int(rec.opt_out_phone),
            int(rec.opt_out_sms), int(rec.consent_phone), int(rec.consent_sms),
            int(rec.voicemail_ok))


def encode_encounter(rec: EncounterRecord, encoding: Encoding) -> tuple[Any, ...]:
    if encoding == "generic":
        return (rec.his_id, rec.type, rec.attending_doctor, rec.admit_at, rec.discharge_at,
                list(rec.diagnoses), list(rec.procedures), rec.disposition)
    return (rec.his_id, rec.type.value, rec.attending_doctor, sqlite_datetime(rec.admit_at),
            sqlite_datetime(rec.discharge_at), json_list(rec.diagnoses),
            json_list(rec.procedures), rec.disposition)
