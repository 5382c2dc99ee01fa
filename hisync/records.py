"""What a parsed HIS row becomes: a typed record, or a reject with its field and reason.

These are `NamedTuple`s rather than frozen dataclasses on purpose: a million of them cross
a process boundary (pickled) on the sync's hot path, and a NamedTuple pickles as a plain
tuple, about three times cheaper. They are just as immutable and typed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any, NamedTuple

from core.enums import EncounterType, RejectReason, Sex

RawRow = dict[str, str | None]


class PatientRecord(NamedTuple):
    his_id: str
    mrn: str
    name: str
    sex: Sex
    birth_date: dt.date | None
    phone: str  # E.164
    phone_alt: str | None  # E.164
    language: str
    timezone: str
    deceased: bool
    opt_out_phone: bool
    opt_out_sms: bool
    consent_phone: bool
    consent_sms: bool
    voicemail_ok: bool  # an answering machine may be left the call-back message


class EncounterRecord(NamedTuple):
    his_id: str
    patient_his_id: str
    type: EncounterType
    department_code: str  # our department code (after the mapping's code table)
    attending_doctor: str | None
    admit_at: dt.datetime  # aware UTC
    discharge_at: dt.datetime | None  # aware UTC; None while still admitted
    diagnoses: tuple[str, ...]
    procedures: tuple[str, ...]
    disposition: str | None


class Accepted(NamedTuple):
    """A valid row, ready for the store.

    `values` is the record encoded for the target store (see `hisync.encoding`); `link` is the
    patient HIS id of an encounter and `department` its department code (both resolved to
    store ids by the writer); `content_hash` decides whether a stored row really changed.
    """

    key: str
    content_hash: str
    values: tuple[Any, ...]
    link: str | None = None
    department: str | None = None


class Reject(NamedTuple):
    """A row for the quarantine: which field was wrong, why, and the raw row.

    Build with `make_reject`: it serialises the raw row once (as the store keeps it) and
    digests it, in the parse worker rather than in the writer."""

    row_key: str
    field: str
    reason: RejectReason
    detail: str
    raw: RawRow
    raw_json: str
    raw_hash: str


def make_reject(row_key: str, field: str, reason: RejectReason, detail: str,
                raw: RawRow) -> Reject:
    text = json.dumps(raw)  # exactly what SQLAlchemy's JSON type would store
    digest = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()
    return Reject(row_key, field, reason, detail, raw, text, digest)


class Duplicate(NamedTuple):
    """A row identical to the one before it (same key, watermark and content): nothing to do."""

    key: str


Outcome = Accepted | Reject | Duplicate


def content_hash(stored: tuple[Any, ...]) -> str:
    """A stable digest of a record's stored form (str/int/None values; sha1 hex, 40 chars).

    Computed from the SQLite encoding on every backend, so a record hashes the same wherever
    it is stored."""
    return hashlib.sha1(repr(stored).encode(), usedforsecurity=False).hexdigest()


# An accepted row as the writer takes it: (key, content_hash, values, link, department, index
# of the raw row in its batch). A plain tuple: it crosses the process boundary by the million.
AcceptedRow = tuple[str, str, tuple[Any, ...], str | None, str | None, int]


class ParsedBatch(NamedTuple):
    """One batch, parsed and summarised where it was parsed (in the worker).

    `accepted` holds one row per key (the last one wins when a key repeats at a later
    watermark in the batch); `unchanged` counts the rows that needed no write of their own
    (identical duplicates, superseded rows); `rejects` go to quarantine."""

    accepted: list[AcceptedRow]
    unchanged: int
    rejects: list[Reject]


def summarize(outcomes: list[Outcome]) -> ParsedBatch:
    accepted: dict[str, AcceptedRow] = {}
    unchanged = 0
    rejects: list[Reject] = []
    for i, o in enumerate(outcomes):
        kind = type(o)
        if kind is Accepted:
            key = o[0]
            if key in accepted:
                unchanged += 1
            accepted[key] = (*o, i)
        elif kind is Duplicate:
            unchanged += 1
        else:
            rejects.append(o)  # type: ignore[arg-type]
    return ParsedBatch(list(accepted.values()), unchanged, rejects)

