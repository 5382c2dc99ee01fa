"""The do-not-call list: numbers never to be called, with why, who and until when.

An entry is in force while it is not removed and its expiry (if any) has not passed. The
dialer reads `blocked` for every claim batch (one query), so an entry added in the console
stops the next call to that number in every dialer process. Adding, removing and importing
are audited in the caller's transaction.

A CSV import (`import_csv`) reads `phone,reason,note,expires` with a header line; every bad
line is reported by its line number and the good ones are added in the caller's one
transaction, audited once with the counts. `decode_csv` says which encodings a file may
have: UTF-8 with or without a byte-order mark, else GB18030 (which includes GBK, what
Excel on a Chinese Windows saves); anything else is refused whole.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, and_, or_, select
from sqlalchemy.orm import Session

from core.audit import AuditLog
from core.enums import DncReason, DncSource
from core.errors import InvalidRequest, NotFound
from core.phones import to_e164
from core.store.models import DoNotCall, Patient

NOTE_MAX = 256  # the column's width
WHY_MAX = 256
_CHUNK = 500  # phones per IN (...) when an import looks for entries already in force
CSV_COLUMNS = ("phone", "reason", "note", "expires")


def in_force(now: dt.datetime) -> ColumnElement[bool]:
    """The entries that stop a call at `now`."""
    return and_(DoNotCall.removed_at.is_(None),
                or_(DoNotCall.expires_at.is_(None), DoNotCall.expires_at > now))


def blocked(conn: Connection | Session, phones: Collection[str],
            now: dt.datetime) -> dict[str, DncReason]:
    """The numbers among `phones` (E.164) on the list at `now`, each with its reason (a
    wrong number wins over a patient's request: it says the number is not theirs)."""
    if not phones:
        return {}
    out: dict[str, DncReason] = {}
    rows = conn.execute(select(DoNotCall.phone, DoNotCall.reason)
                        .where(DoNotCall.phone.in_(list(phones)), in_force(now)))
    for phone, reason in rows:
        if out.get(phone) is not DncReason.WRONG_NUMBER:
            out[phone] = reason
    return out


def entry_in_force(session: Session, phone: str, reason: DncReason,
                   now: dt.datetime) -> DoNotCall | None:
    """The entry putting `phone` on the list for `reason` at `now`, if there is one."""
    return session.execute(select(DoNotCall).where(
        DoNotCall.phone == phone, DoNotCall.reason == reason, in_force(now))
    ).scalars().first()


def add(session: Session, audit: AuditLog, *, phone: str, reason: DncReason,
        source: DncSource, actor: str, now: dt.datetime, note: str = "",
        patient_id: int | None = None, expires_at: dt.datetime | None = None) -> DoNotCall:
    """Put `phone` (E.164, already validated) on the list, audited. A number already on
    the list for the same reason is left as it is (and returned)."""
    existing = entry_in_force(session, phone, reason, now)
    if existing is not None:
        return existing
    entry = DoNotCall(phone=phone, reason=reason, source=source, note=note,
                      patient_id=patient_id, expires_at=expires_at, added_by=actor,
                      added_at=now)
    session.add(entry)
    session.flush()
    audit.append(session, actor, "dnc.add", "do_not_call", entry.id,
                 {"reason": reason.value, "source": source.value, "patient_id": patient_id,
                  "expires_at": expires_at.isoformat() if expires_at else None})
    return entry


@dataclass(frozen=True, slots=True)
class DncChange:
    """What a removal did: `changed` False means it was a no-op (see `message`)."""

    changed: bool
    message: str


def remove(session: Session, audit: AuditLog, entry_id: int, actor: str, now: dt.datetime,
           why: str) -> DncChange:
    """Take entry `entry_id` off the list (it is kept, marked removed by `actor` at `now`),
    audited as `dnc.remove` with `why`. Removing a removed entry changes nothing and says so.

    Raises NotFound (no such entry) and InvalidRequest (no reason, or one too long).
    """
    why = why.strip()
    if not why:
        raise InvalidRequest("a removal needs a reason")
    if len(why) > WHY_MAX:
        raise InvalidRequest(f"the reason is longer than {WHY_MAX} characters")
    entry = session.execute(select(DoNotCall).where(DoNotCall.id == entry_id)
                            .with_for_update()).scalar_one_or_none()
    if entry is None:
        raise NotFound(f"no do-not-call entry {entry_id}")
    if entry.removed_at is not None:
        return DncChange(False, f"entry {entry_id} was already removed by {entry.removed_by}")
    entry.removed_by = actor[:64]
    entry.removed_at = now
    session.flush()
    audit.append(session, actor, "dnc.remove", "do_not_call", entry.id,
                 {"why": why, "reason": entry.reason.value})
    return DncChange(True, f"entry {entry_id} removed")


class DncState(StrEnum):
    """Where an entry stands at a given time."""

    IN_FORCE = "in_force"
    EXPIRED = "expired"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class DncRow:
    """One entry of the list, for display."""

    id: int
    phone: str
    reason: DncReason
    source: DncSource
    note: str
    patient_id: int | None
    patient_name: str | None  # the linked patient's name, if an entry names one
    added_by: str
    added_at: dt.datetime
    expires_at: dt.datetime | None
    removed_by: str | None
    removed_at: dt.datetime | None
    state: DncState


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _state(entry: DoNotCall, now: dt.datetime) -> DncState:
    if entry.removed_at is not None:
        return DncState.REMOVED
    if entry.expires_at is not None and entry.expires_at <= now:
        return DncState.EXPIRED
    return DncState.IN_FORCE


def _rows(session: Session, where: Sequence[ColumnElement[bool]], now: dt.datetime,
          limit: int) -> list[DncRow]:
    found = session.execute(
        select(DoNotCall, Patient.name).outerjoin(Patient, Patient.id == DoNotCall.patient_id)
        .where(*where).order_by(DoNotCall.added_at.desc(), DoNotCall.id.desc()).limit(limit)
    ).all()
    return [DncRow(e.id, e.phone, e.reason, e.source, e.note, e.patient_id, name, e.added_by,
                   e.added_at, e.expires_at, e.removed_by, e.removed_at, _state(e, now))
            for e, name in found]


def listing(session: Session, now: dt.datetime, q: str = "", include_removed: bool = False,
            limit: int = 200, *, region: str = "CN") -> list[DncRow]:
    """Entries newest first, at most `limit`: those in force at `now`, or every entry ever
    made (removed and expired too) with `include_removed`. `q` narrows them to a number (in
    any format `to_e164` reads for `region`, or four or more of its digits), a note
    containing it, or a linked patient whose name starts with it."""
    where: list[ColumnElement[bool]] = [] if include_removed else [in_force(now)]
    q = q.strip()
    if q:
        match: list[ColumnElement[bool]] = [
            DoNotCall.note.like(f"%{_like(q)}%", escape="\\"),
            Patient.name.like(f"{_like(q)}%", escape="\\")]
        phone = to_e164(q, region) if any(ch.isdigit() for ch in q) else None
        if phone is not None:
            match.append(DoNotCall.phone == phone)
        digits = "".join(ch for ch in q if ch.isascii() and ch.isdigit())
        if len(digits) >= 4:
            match.append(DoNotCall.phone.like(f"%{digits}%"))
        where.append(or_(*match))
    return _rows(session, where, now, limit)


def on_list(session: Session, phones: Collection[str], now: dt.datetime) -> list[DncRow]:
    """The entries in force at `now` for any of `phones` (E.164), newest first."""
    wanted = [p for p in phones if p]
    if not wanted:
        return []
    return _rows(session, [DoNotCall.phone.in_(wanted), in_force(now)], now, 100)


def expiry(day: dt.date, timezone: str) -> dt.datetime:
    """When an entry given the expiry date `day` lapses: 00:00 of that day in the hospital's
    time zone (from that day the number may be called again), in UTC."""
    return dt.datetime.combine(day, dt.time(0), ZoneInfo(timezone)).astimezone(dt.UTC)


class ImportProblem(StrEnum):
    """Why one line of an import was not taken."""

    MISSING_PHONE = "missing_phone"
    BAD_NUMBER = "bad_number"
    UNKNOWN_REASON = "unknown_reason"
    BAD_DATE = "bad_date"  # not YYYY-MM-DD, not a day, or not after today
    NOTE_TOO_LONG = "note_too_long"
    TOO_MANY_COLUMNS = "too_many_columns"


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int  # in the file, the header being line 1
    problem: ImportProblem
    value: str  # what the line held in the field at fault


@dataclass(frozen=True, slots=True)
class ImportResult:
    imported: int
    already_listed: int  # good lines whose number was already on the list for that reason
    bad: tuple[BadLine, ...]


@dataclass(frozen=True, slots=True)
class GoodLine:
    """A line of an import that can be added."""

    line: int
    phone: str
    reason: DncReason
    note: str
    expires_at: dt.datetime | None


class CsvProblem(StrEnum):
    """Why a whole file was refused."""

    NOT_TEXT = "not_text"  # binary, UTF-16, or neither UTF-8 nor GB18030
    NO_HEADER = "no_header"  # empty, or the first line does not name the columns
    UNREADABLE = "unreadable"  # the csv module gave up on a line


class CsvRefused(InvalidRequest):
    """A file that is not a usable CSV list; nothing was added. `problem` says why."""

    def __init__(self, problem: CsvProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem


def decode_csv(data: bytes) -> str:
    """A CSV file's text: UTF-8 (a byte-order mark is dropped), else GB18030 (GBK's
    superset). Raises CsvRefused for anything else (binary data, UTF-16, ...)."""
    if b"\x00" in data:  # UTF-16 or a binary file: both decoders would take it
        raise CsvRefused(CsvProblem.NOT_TEXT, "the file is not a text CSV file (it holds "
                         "NUL bytes; save it as CSV UTF-8)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise CsvRefused(CsvProblem.NOT_TEXT,
                         "the file is neither UTF-8 nor GBK/GB18030 text") from None


def _header(row: list[str]) -> list[str]:
    names = [cell.strip().lower() for cell in row]
    unknown = [n for n in names if n not in CSV_COLUMNS]
    if "phone" not in names or unknown or len(set(names)) != len(names):
        raise CsvRefused(CsvProblem.NO_HEADER, "the first line must be a header naming "
                         f"the columns {','.join(CSV_COLUMNS)} (phone required; found "
                         f"{','.join(names)!r})")
    return names


def _parse_line(line: int, cells: dict[str, str], extra: bool, region: str,
                timezone: str, now: dt.datetime) -> GoodLine | BadLine:
    raw_phone = cells.get("phone", "")
    if extra:
        return BadLine(line, ImportProblem.TOO_MANY_COLUMNS, raw_phone)
    if not raw_phone:
        return BadLine(line, ImportProblem.MISSING_PHONE, "")
    phone = to_e164(raw_phone, region)
    if phone is None:
        return BadLine(line, ImportProblem.BAD_NUMBER, raw_phone)
    raw_reason = cells.get("reason", "")
    try:
        reason = DncReason(raw_reason.lower().replace("-", "_").replace(" ", "_")) \
            if raw_reason else DncReason.PATIENT_REQUEST
    except ValueError:
        return BadLine(line, ImportProblem.UNKNOWN_REASON, raw_reason)
    note = cells.get("note", "")
    if len(note) > NOTE_MAX:
        return BadLine(line, ImportProblem.NOTE_TOO_LONG, note[:40] + "…")
    expires_at = None
    raw_date = cells.get("expires", "")
    if raw_date:
        try:
            day = dt.date.fromisoformat(raw_date) if len(raw_date) == 10 else None
        except ValueError:
            day = None
        expires_at = expiry(day, timezone) if day is not None else None
        if expires_at is None or expires_at <= now:
            return BadLine(line, ImportProblem.BAD_DATE, raw_date)
    return GoodLine(line, phone, reason, note, expires_at)


def parse_csv(text: str, *, region: str, timezone: str,
              now: dt.datetime) -> tuple[list[GoodLine], list[BadLine]]:
    """The good lines and the bad ones of an import's text (nothing is stored). Blank lines
    and lines of empty cells are skipped. Raises CsvRefused without a usable header, or for
    text holding a NUL (a binary file)."""
    if "\x00" in text:
        raise CsvRefused(CsvProblem.NOT_TEXT,
                         "the file is not a text CSV file (it holds NUL characters)")
    # newline="": the reader sees "\r\n", "\r" and "\n" ends, and quoted line breaks
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header: list[str] | None = None
    good: list[GoodLine] = []
    bad: list[BadLine] = []
    start = 1
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = _header(row)
                continue
            cells = {name: value.strip() for name, value in zip(header, row, strict=False)}
            extra = len(row) > len(header) and any(c.strip() for c in row[len(header):])
            parsed = _parse_line(line, cells, extra, region, timezone, now)
            if isinstance(parsed, BadLine):
                bad.append(parsed)
            else:
                good.append(parsed)
    except csv.Error as exc:  # a NUL, a field past the csv module's size limit
        raise CsvRefused(CsvProblem.UNREADABLE,
                         f"line {start}: not readable as CSV ({exc})") from exc
    if header is None:
        raise CsvRefused(CsvProblem.NO_HEADER, "the file is empty: it needs a header line "
                         f"{','.join(CSV_COLUMNS)} and one number a line")
    return good, bad


def import_csv(session: Session, audit: AuditLog, text: str, actor: str, now: dt.datetime,
               region: str, *, timezone: str) -> ImportResult:
    """Add the numbers of a CSV list (see `parse_csv`; `expires` dates are days in
    `timezone`) in the caller's transaction, as source `import`, audited once as
    `dnc.import` with the counts and the new entries' ids. A number already on the list for
    the same reason (before or earlier in the file) is not added again.

    Raises CsvRefused when the header is missing or wrong (nothing is added).
    """
    good, bad = parse_csv(text, region=region, timezone=timezone, now=now)
    listed: set[tuple[str, DncReason]] = set()
    phones = sorted({g.phone for g in good})
    for i in range(0, len(phones), _CHUNK):
        listed.update((phone, reason) for phone, reason in session.execute(
            select(DoNotCall.phone, DoNotCall.reason).where(
                DoNotCall.phone.in_(phones[i:i + _CHUNK]), in_force(now))))
    fresh: list[DoNotCall] = []
    for g in good:
        if (g.phone, g.reason) in listed:
            continue
        listed.add((g.phone, g.reason))
        fresh.append(DoNotCall(phone=g.phone, reason=g.reason, source=DncSource.IMPORT,
                               note=g.note, expires_at=g.expires_at, added_by=actor[:64],
                               added_at=now))
    session.add_all(fresh)
    session.flush()
    result = ImportResult(len(fresh), len(good) - len(fresh), tuple(bad))
    audit.append(session, actor, "dnc.import", "do_not_call", 0,
                 {"imported": result.imported, "already_listed": result.already_listed,
                  "bad_lines": [b.line for b in bad], "ids": [e.id for e in fresh]})
    return result
