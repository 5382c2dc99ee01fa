"""Raw HIS rows -> typed records or rejects. Pure functions: no I/O, no clock, no store.

A batch arrives as a list of tuples in the entity's `source_columns` order, sorted by
(watermark, key). Each row is checked field by field in a fixed order and the FIRST problem
makes it a `Reject` (field + `RejectReason` + a detail a person can act on + the raw row).

Duplicates: rows sharing one (watermark, key) are adjacent (the source orders by both and
never splits such a group across batches). Identical ones collapse to one (`Duplicate` for
the rest); if their content differs we cannot tell which is right, so every row of the group
goes to quarantine as CONFLICTING_DUPLICATE. The same key at a *later* watermark is an
ordinary update: the later row wins.

`RowParser` is built once per worker process from plain, picklable settings (`ParserConfig`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from core.enums import EncounterType, RejectReason, Sex
from core.phones import to_e164
from hisync.dates import LocalTime, parse_date, parse_datetime, zone
from hisync.encoding import Encoding, encode_encounter, encode_patient
from hisync.mapping import HisMapping
from hisync.records import (
    Accepted,
    Duplicate,
    EncounterRecord,
    Outcome,
    PatientRecord,
    RawRow,
    Reject,
    content_hash,
    make_reject,
)

Row = Sequence[Any]
T = TypeVar("T")

_TRUE = frozenset({"1", "y", "yes", "true", "t", "是", "有"})
_FALSE = frozenset({"0", "n", "no", "false", "f", "否", "无"})
_LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(?:-[A-Z][a-z]{3})?(?:-[A-Z]{2})?")
_ICD10 = re.compile(r"[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?")
_LIST_SPLIT = re.compile(r"[;,，；|\s]+")
# Patient yes/no fields and their value when the HIS has no column for them.
_FLAGS = (("deceased", False), ("opt_out_phone", False), ("opt_out_sms", False),
          ("consent_phone", True), ("consent_sms", False), ("voicemail_ok", False))


class RowError(Exception):
    """Internal: one field of one row is bad. Becomes a `Reject`; never escapes this module."""

    def __init__(self, field: str, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.field = field
        self.reason = reason
        self.detail = detail


# The store's column sizes (core/store/models.py): longer text is a reject at parse time,
# the same on every store (SQLite would keep it; PostgreSQL would fail the whole batch).
LIMITS: dict[str, dict[str, int]] = {
    "patients": {"his_id": 64, "mrn": 64, "name": 128, "language": 16, "timezone": 64},
    "encounters": {"his_id": 64, "patient_his_id": 64, "attending_doctor": 128,
                   "disposition": 32},
}
# Characters no name, id or code holds: C0/C1 controls and invisible format characters
# (bidi overrides such as U+202E make a terminal or a page show something else).
_HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
EARLIEST_BIRTH = dt.date(1900, 1, 1)
LATEST_VISIT_AHEAD = dt.timedelta(days=366)  # a planned admission, not a typo's year 2062


@dataclass(frozen=True)
class ParserConfig:
    """Everything a parse worker needs (picklable). `today` (the sync's clock, in the
    hospital's zone) bounds plausible dates; None skips those checks."""

    mapping: HisMapping
    region: str = "CN"
    timezone: str = "Asia/Shanghai"
    language: str = "zh-CN"
    encoding: Encoding = "generic"
    today: dt.date | None = None


def text(value: Any) -> str | None:
    """A cell as trimmed text; None for NULL or blank. Numbers keep their digits."""
    if value is None:
        return None
    if type(value) is str:
        s = value.strip()
        return s or None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.isoformat(" ")
    s = str(value).strip()
    return s or None


class RowParser:
    """Parses one entity's rows. Build once per entity; call `parse_batch`."""

    def __init__(self, config: ParserConfig, entity: str) -> None:
        mapping = config.mapping
        spec = mapping.entity(entity)
        self.entity = entity
        self.columns: tuple[str, ...] = spec.source_columns
        index = {c: i for i, c in enumerate(self.columns)}
        # Unmapped fields read slot -1: `_cells` appends a None there.
        self._ix: dict[str, int] = defaultdict(lambda: -1)
        self._ix.update({field: index[col] for col, field in spec.fields.items()})
        self._mapped = frozenset(spec.fields.values())
        self._wm = index[spec.watermark]
        self._key = index[spec.key]
        self._formats = mapping.formats_for(entity)
        local = zone(mapping.timezone or config.timezone)
        assert local is not None, "time zones are validated with the settings and mapping"
        self._local = LocalTime(local)
        self._region = config.region
        self._default_tz = config.timezone
        self._default_lang = config.language
        self._encoding: Encoding = config.encoding
        self._mapping = mapping
        self._parse_one: Callable[[list[str | None]], Accepted] = (
            self._patient if entity == "patients" else self._encounter)
        self._limits = [(field, size, self._ix[field]) for field, size in LIMITS[entity].items()]
        self._today = config.today

    # -- cells -------------------------------------------------------------------------

    @staticmethod
    def _cells(row: Row) -> list[str | None]:
        cells = [None if v is None else (v.strip() or None) if type(v) is str else text(v)
                 for v in row]
        cells.append(None)
        return cells

    def _required(self, c: list[str | None], field: str) -> str:
        value = c[self._ix[field]]
        if value is None:
            raise RowError(field, RejectReason.MISSING_FIELD, f"{field} is empty")
        return value

    def _bool(self, c: list[str | None], field: str, default: bool) -> bool:
        value = c[self._ix[field]]
        if value is None:
            return default
        low = value.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise RowError(field, RejectReason.INVALID_VALUE, f"{value!r} is not yes/no")

    def _code(self, c: list[str | None], field: str, table: dict[str, T],
              reason: RejectReason) -> T:
        value = self._required(c, field)
        try:
            return table[value]
        except KeyError:
            raise RowError(field, reason, f"code {value!r} is not in the mapping's table") from None

    def _phone(self, c: list[str | None], field: str, required: bool) -> str | None:
        value = c[self._ix[field]]
        if value is None:
            if required:
                raise RowError(field, RejectReason.INVALID_PHONE, "no phone number")
            return None
        e164 = to_e164(value, self._region)
        if e164 is None:
            raise RowError(field, RejectReason.INVALID_PHONE, f"{value!r} is not a valid number")
        return e164

    def _datetime(self, c: list[str | None], field: str, required: bool) -> dt.datetime | None:
        value = self._required(c, field) if required else c[self._ix[field]]
        if value is None:
            return None
        parsed = parse_datetime(value, self._formats, self._local)
        if parsed is None:
            raise RowError(field, RejectReason.UNPARSEABLE_DATE, f"{value!r} is not a date/time")
        return parsed

    def _codes_list(self, c: list[str | None], field: str,
                    pattern: re.Pattern[str] | None) -> tuple[str, ...]:
        value = c[self._ix[field]]
        if value is None:
            return ()
        items = tuple(p for p in _LIST_SPLIT.split(value.upper()) if p)
        if pattern is not None:
            for item in items:
                if pattern.fullmatch(item) is None:
                    raise RowError(field, RejectReason.INVALID_VALUE,
                                   f"{item!r} is not an ICD-10 code")
        return items

    # -- entities ------------------------------------------------------------------------

    def _patient(self, c: list[str | None]) -> Accepted:
        ix = self._ix
        his_id = self._required(c, "his_id")
        name = self._required(c, "name")
        mrn = self._required(c, "mrn")
        phone = self._phone(c, "phone", required=True)
        assert phone is not None
        phone_alt = self._phone(c, "phone_alt", required=False)
        sex_code = c[ix["sex"]]
        if sex_code is None:
            sex = Sex.UNKNOWN
        elif sex_code in self._mapping.sex:
            sex = self._mapping.sex[sex_code]
        else:
            raise RowError("sex", RejectReason.UNKNOWN_CODE, f"sex code {sex_code!r} is unknown")
        birth_raw = c[ix["birth_date"]]
        birth = None
        if birth_raw is not None:
            birth = parse_date(birth_raw, self._formats)
            if birth is None:
                raise RowError("birth_date", RejectReason.UNPARSEABLE_DATE,
                               f"{birth_raw!r} is not a date")
            self._plausible_birth(birth)
        language = self._language(c[ix["language"]])
        timezone = c[ix["timezone"]] or self._default_tz
        if timezone != self._default_tz and zone(timezone) is None:
            raise RowError("timezone", RejectReason.INVALID_VALUE,
                           f"{timezone!r} is not a time zone")
        rec = PatientRecord(
            his_id, mrn, name, sex, birth, phone, phone_alt, language, timezone,
            *[self._bool(c, f, d) if f in self._mapped else d for f, d in _FLAGS],
        )
        stored = encode_patient(rec, "sqlite")
        values = stored if self._encoding == "sqlite" else encode_patient(rec, self._encoding)
        return Accepted(his_id, content_hash(stored), values)

    def _language(self, value: str | None) -> str:
        if value is None:
            return self._default_lang
        table = self._mapping.language
        if table is not None and value in table:
            return table[value]
        if _LANGUAGE_TAG.fullmatch(value) is None:
            raise RowError("language", RejectReason.INVALID_VALUE,
                           f"{value!r} is not a language tag such as zh-CN")
        return value

    def _encounter(self, c: list[str | None]) -> Accepted:
        m = self._mapping
        his_id = self._required(c, "his_id")
        patient = self._required(c, "patient_his_id")
        etype: EncounterType = self._code(c, "type", m.encounter_type, RejectReason.UNKNOWN_CODE)
        dept = self._code(c, "department", m.departments, RejectReason.UNKNOWN_DEPARTMENT).code
        admit = self._datetime(c, "admit_at", required=True)
        assert admit is not None
        self._plausible_visit("admit_at", admit)
        discharge = self._datetime(c, "discharge_at", required=False)
        if discharge is not None:
            self._plausible_visit("discharge_at", discharge)
        if discharge is not None and discharge < admit:
            raise RowError("discharge_at", RejectReason.INVALID_VALUE,
                           "discharge is before admission")
        disposition = c[self._ix["disposition"]]
        if disposition is not None and m.disposition is not None:
            disposition = self._code(c, "disposition", m.disposition, RejectReason.UNKNOWN_CODE)
        rec = EncounterRecord(
            his_id, patient, etype, dept, c[self._ix["attending_doctor"]], admit, discharge,
            self._codes_list(c, "diagnoses", _ICD10), self._codes_list(c, "procedures", None),
            disposition,
        )
        stored = encode_encounter(rec, "sqlite")
        values = stored if self._encoding == "sqlite" else encode_encounter(rec, self._encoding)
        # The hash covers the patient and department, which the stored values hold as ids.
        return Accepted(his_id, content_hash((*stored, patient, dept)), values,
                        link=patient, department=dept)

    # -- rows and batches ------------------------------------------------------------------

    def raw(self, row: Row) -> RawRow:
        return {c: text(v) for c, v in zip(self.columns, row, strict=True)}

    def _check_text(self, c: list[str | None]) -> None:
        """Sizes the store keeps, and no hidden characters in any cell."""
        for field, size, i in self._limits:
            value = c[i]
            if value is not None and len(value) > size:
                raise RowError(field, RejectReason.TOO_LONG,
                               f"{len(value)} characters; the most kept is {size}")
        for i, value in enumerate(c):
            if value is None or value.isprintable():
                continue
            hidden = _HIDDEN.search(value)
            if hidden is not None:
                raise RowError(self._field_of(i), RejectReason.INVALID_VALUE,
                               f"holds a control or invisible character "
                               f"(U+{ord(hidden.group()):04X})")

    def _field_of(self, i: int) -> str:
        column = self.columns[i] if i < len(self.columns) else "?"
        spec = self._mapping.entity(self.entity)
        return spec.fields.get(column, column)

    def _plausible_birth(self, birth: dt.date) -> None:
        if birth < EARLIEST_BIRTH or (self._today is not None and birth > self._today):
            raise RowError("birth_date", RejectReason.IMPLAUSIBLE_DATE,
                           f"born {birth.isoformat()}: not between 1900 and today")

    def _plausible_visit(self, field: str, at: dt.datetime) -> None:
        if at.year < 1900 or (self._today is not None
                              and at.date() > self._today + LATEST_VISIT_AHEAD):
            raise RowError(field, RejectReason.IMPLAUSIBLE_DATE,
                           f"{at.date().isoformat()}: before 1900 or over a year ahead")

    def parse_row(self, row: Row) -> Accepted | Reject:
        try:
            cells = self._cells(row)
            if cells[self._wm] is None:
                raise RowError(self._mapping.entity(self.entity).watermark,
                               RejectReason.MISSING_FIELD,
                               "the watermark column is empty: the row cannot be synced "
                               "incrementally")
            self._check_text(cells)
            return self._parse_one(cells)
        except RowError as err:
            return make_reject(text(row[self._key]) or "", err.field, err.reason, err.detail,
                               self.raw(row))

    def parse_batch(self, rows: Sequence[Row]) -> list[Outcome]:
        """Parse rows in order; duplicates resolved within (watermark, key) groups."""
        out: list[Outcome] = []
        wm, key = self._wm, self._key
        i, n = 0, len(rows)
        while i < n:
            j = i + 1
            mark = (rows[i][wm], rows[i][key])
            while j < n and (rows[j][wm], rows[j][key]) == mark:
                j += 1
            if j == i + 1:
                out.append(self.parse_row(rows[i]))
            else:
                out.extend(self._group(rows[i:j]))
            i = j
        return out

    def _group(self, rows: Sequence[Row]) -> list[Outcome]:
        parsed = [self.parse_row(r) for r in rows]
        hashes = {p.content_hash for p in parsed if isinstance(p, Accepted)}
        if len(hashes) <= 1:
            out: list[Outcome] = []
            seen = False
            for p in parsed:
                if isinstance(p, Accepted) and seen:
                    out.append(Duplicate(p.key))
                else:
                    seen = seen or isinstance(p, Accepted)
                    out.append(p)
            return out
        key_col = self._mapping.entity(self.entity).key
        count = sum(isinstance(p, Accepted) for p in parsed)
        detail = (f"{count} rows share this key and watermark with different data; "
                  "fix the HIS so one remains")
        return [make_reject(p.key, "his_id", RejectReason.CONFLICTING_DUPLICATE,
                            detail + f" (key column {key_col})", self.raw(r))
                if isinstance(p, Accepted) else p
                for p, r in zip(parsed, rows, strict=True)]
