"""Where HIS rows come from: the `Source` seam and its SQL and file implementations.

A source yields an entity's rows as `RawBatch`es of plain tuples (in the mapping's
`source_columns` order), sorted by (watermark, key), strictly after a resume `Mark`.
Two promises the sync relies on:

- rows sharing one (watermark, key) are never split across batches, so duplicates of a key
  are always judged together (a batch may exceed `batch_size` to keep such a group whole);
- each batch carries the `Mark` to resume after it; committing it with the batch makes a
  killed run resume exactly there.

Failures are translated at this edge: `SourceUnavailable` (temporary: connection refused,
database locked, I/O error; the sync retries with backoff) or `SourceError` (permanent: no
such table or column, bad SQL, missing file).

`SqlSource` reads any SQLAlchemy URL with a streaming cursor (SQLite files are opened
read-only). `FileSource` loads a folder of CSV files (`<table>.csv`) or an XLSX workbook
(one sheet per table) into a temporary SQLite file, streaming, then reads it as SQL, so a
file source orders, resumes and even runs `query:` mappings exactly like a database.
Watermarks are compared as the source compares them; for CSV that is as text, so use ISO
timestamps or zero-padded numbers.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import shutil
import sqlite3
import tempfile
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    Engine,
    and_,
    bindparam,
    column,
    create_engine,
    func,
    or_,
    select,
    table,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy import text as sql_text
from sqlalchemy.engine import make_url
from sqlalchemy.types import NullType

from core.errors import SourceError, SourceUnavailable
from hisync.mapping import EntityMapping

# Errors a retry cannot cure, whatever class the driver gives them: a wrong schema, a wrong
# password (PostgreSQL, MySQL/MariaDB "Access denied"), a database or role that is not there.
_PERMANENT = ("no such table", "no such column", "syntax error", "not a database",
              "file is not a database", "ambiguous column", "password authentication failed",
              "access denied", "authentication failed", "does not exist", "invalid sslmode",
              "unknown database")


@dataclass(frozen=True)
class Mark:
    """A position in (watermark, key) order: rows after it are still to be read."""

    watermark: str
    key: str | None


@dataclass(frozen=True)
class RawBatch:
    rows: list[tuple[Any, ...]]
    last: Mark | None  # resume after this batch; None while no watermark was seen


class Source(Protocol):
    """An HIS to read from. Raises SourceUnavailable (retry) or SourceError (give up)."""

    @property
    def name(self) -> str:
        """A stable name for watermarks and the quarantine (never contains a password)."""
        ...

    def batches(self, entity: EntityMapping, after: Mark | None,
                batch_size: int) -> Generator[RawBatch, None, None]:
        """The entity's rows after `after`, in (watermark, key) order."""
        ...

    def count(self, entity: EntityMapping, after: Mark | None) -> int | None:
        """How many rows `batches` would yield (for a progress bar), or None if unknown."""
        ...

    def close(self) -> None: ...


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat(" ")
    return str(value)


def regroup(parts: Iterable[list[tuple[Any, ...]]], wm: int,
            key: int) -> Generator[RawBatch, None, None]:
    """Re-cut fetched row lists so no (watermark, key) group spans two batches."""
    carry: list[tuple[Any, ...]] = []
    last: Mark | None = None
    for part in parts:
        rows = carry + part if carry else part
        if not rows:
            continue
        tail = (rows[-1][wm], rows[-1][key])
        cut = len(rows) - 1
        while cut >= 0 and (rows[cut][wm], rows[cut][key]) == tail:
            cut -= 1
        if cut < 0:
            carry = rows
            continue
        batch, carry = rows[:cut + 1], rows[cut + 1:]
        last = _mark_of(batch, wm, key) or last
        yield RawBatch(batch, last)
    if carry:
        last = _mark_of(carry, wm, key) or last
        yield RawBatch(carry, last)


def _mark_of(rows: Sequence[tuple[Any, ...]], wm: int, key: int) -> Mark | None:
    for row in reversed(rows):
        if row[wm] is not None:
            return Mark(str(_cell(row[wm])), _cell(row[key]))
    return None


def translate_db_error(exc: sa_exc.SQLAlchemyError, what: str) -> SourceError:
    """Library error -> our tree: temporary (retry) or permanent."""
    message = (str(getattr(exc, "orig", None) or exc).strip() or type(exc).__name__)
    message = message.splitlines()[0]
    temporary = isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError |
                           sa_exc.DisconnectionError | sa_exc.TimeoutError)
    if temporary and not any(p in message.lower() for p in _PERMANENT):
        return SourceUnavailable(f"{what}: {message}")
    return SourceError(f"{what}: {message}")


class SqlSource:
    """An HIS database reachable by an SQLAlchemy URL (read-only for SQLite files)."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self._dialect = parsed.get_backend_name()
        self._name = parsed.render_as_string(hide_password=True)
        if self._dialect == "sqlite":
            path = parsed.database or ""
            if not path or path == ":memory:" or path.startswith("file:"):
                raise SourceError(f"{url}: give the path of an SQLite HIS file")
            if not Path(path).is_file():
                raise SourceError(f"HIS file {path} does not exist")
            parsed = parsed.set(database=f"file:{Path(path).resolve()}?mode=ro",
                                query={"uri": "true"})
            self._name = str(Path(path).resolve())
        self._url = parsed
        self._engine: Engine | None = None

    @property
    def name(self) -> str:
        return self._name[:256]

    def _get_engine(self) -> Engine:
        if self._engine is None:
            try:
                url = self._url
                if self._dialect == "postgresql" and url.drivername == "postgresql":
                    url = url.set(drivername="postgresql+psycopg")
                self._engine = create_engine(url)
            except (sa_exc.ArgumentError, ImportError) as exc:
                raise SourceError(f"cannot use source {self._name}: {exc}") from exc
        return self._engine

    def _select(self, spec: EntityMapping, after: Mark | None) -> Any:
        cols = spec.source_columns
        if spec.table is not None:
            schema, _, name = spec.table.rpartition(".")
            origin: Any = table(name, *[column(c) for c in cols], schema=schema or None)
        else:
            assert spec.query is not None
            origin = sql_text(spec.query).columns(*[column(c) for c in cols]).subquery("src")
        wm, key = origin.c[spec.watermark], origin.c[spec.key]
        stmt = select(*[origin.c[c] for c in cols])
        if after is not None:
            # Untyped parameters: the server casts the text to the column's own type
            # (timestamp, integer, ...) instead of comparing the column as text.
            w = bindparam("after_wm", after.watermark, type_=NullType())
            cond: ColumnElement[bool] = wm >= w
            if after.key is not None:
                k = bindparam("after_key", after.key, type_=NullType())
                cond = and_(cond, or_(wm > w, key > k))
            stmt = stmt.where(cond)
        if self._dialect in ("postgresql", "oracle"):
            return stmt.order_by(wm.asc().nulls_first(), key.asc().nulls_first())
        return stmt.order_by(wm.asc(), key.asc())  # NULLs already sort first here

    def batches(self, entity: EntityMapping, after: Mark | None,
                batch_size: int) -> Generator[RawBatch, None, None]:
        cols = entity.source_columns
        stmt = self._select(entity, after)
        wm, key = cols.index(entity.watermark), cols.index(entity.key)
        try:
            with self._get_engine().connect() as conn:
                if self._dialect == "sqlite":
                    # The DBAPI cursor hands out plain tuples: no Row objects to convert.
                    compiled = stmt.compile(dialect=conn.dialect)
                    params = compiled.construct_params()
                    order = compiled.positiontup or []
                    cursor = conn.connection.driver_connection.execute(  # type: ignore[union-attr]
                        str(compiled), [params[name] for name in order])
                    try:
                        yield from regroup(iter(lambda: cursor.fetchmany(batch_size), []),
                                           wm, key)
                    finally:
                        cursor.close()
                else:
                    result = conn.execution_options(stream_results=True,
                                                    yield_per=batch_size).execute(stmt)
                    try:
                        yield from regroup(([tuple(r) for r in part]
                                            for part in result.partitions(batch_size)), wm, key)
                    finally:
                        result.close()
        except sa_exc.SQLAlchemyError as exc:
            raise translate_db_error(exc, f"reading {self._name}") from exc
        except sqlite3.Error as exc:
            raise translate_db_error(sa_exc.OperationalError(None, None, exc)
                                     if isinstance(exc, sqlite3.OperationalError)
                                     else sa_exc.DatabaseError(None, None, exc),
                                     f"reading {self._name}") from exc

    def count(self, entity: EntityMapping, after: Mark | None) -> int | None:
        stmt = select(func.count()).select_from(self._select(entity, after).order_by(None)
                                                .subquery())
        try:
            with self._get_engine().connect() as conn:
                return int(conn.execute(stmt).scalar_one())
        except sa_exc.SQLAlchemyError as exc:
            raise translate_db_error(exc, f"counting {self._name}") from exc

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


class FileSource:
    """A folder of `<table>.csv` files, or an `.xlsx` workbook with one sheet per table."""

    def __init__(self, path: str | Path) -> None:
        p = Path(path).resolve()
        if p.suffix.lower() == ".csv":
            p = p.parent
        if not p.exists():
            raise SourceError(f"HIS file {p} does not exist")
        self._path = p
        self._tmp: Path | None = None
        self._sql: SqlSource | None = None

    @property
    def name(self) -> str:
        return str(self._path)[:256]

    def _load(self) -> SqlSource:
        if self._sql is not None:
            return self._sql
        self._tmp = Path(tempfile.mkdtemp(prefix="followup-his-"))
        db_path = self._tmp / "his.sqlite"
        conn = sqlite3.connect(db_path)
        try:
            conn.execute("PRAGMA journal_mode=OFF")
            for name, header, rows in self._tables():
                cols = ", ".join(_quote(c) for c in header)
                conn.execute(f"CREATE TABLE {_quote(name)} ({cols})")
                marks = ", ".join("?" for _ in header)
                sql = f"INSERT INTO {_quote(name)} VALUES ({marks})"  # noqa: S608 - quoted names
                chunk: list[tuple[Any, ...]] = []
                for row in rows:
                    chunk.append(row)
                    if len(chunk) >= 20_000:
                        conn.executemany(sql, chunk)
                        chunk = []
                conn.executemany(sql, chunk)
            conn.commit()
        except (OSError, UnicodeDecodeError, csv.Error, sqlite3.Error) as exc:
            self.close()
            if isinstance(exc, OSError):
                raise SourceUnavailable(f"reading {self._path}: {exc}") from exc
            raise SourceError(f"reading {self._path}: {exc}") from exc
        finally:
            conn.close()
        self._sql = SqlSource(f"sqlite:///{db_path}")
        return self._sql

    def _tables(self) -> Iterator[tuple[str, list[str], Iterator[tuple[Any, ...]]]]:
        if self._path.is_dir():
            for f in sorted(self._path.glob("*.csv")):
                with f.open(encoding=csv_encoding(f), newline="") as fh:
                    reader = csv.reader(fh)
                    header = next(reader, [])
                    width = len(header)
                    yield f.stem, header, (_csv_row(r, width) for r in reader)
        elif self._path.suffix.lower() in (".xlsx", ".xlsm"):
            from openpyxl import load_workbook

            book = load_workbook(self._path, read_only=True, data_only=True)
            try:
                for sheet in book.worksheets:
                    it = sheet.iter_rows(values_only=True)
                    header = [str(c) for c in next(it, ()) if c is not None]
                    width = len(header)
                    yield sheet.title, header, (tuple(_xlsx_cell(c) for c in r[:width])
                                                for r in it if any(v is not None for v in r))
            finally:
                book.close()
        else:
            raise SourceError(f"{self._path}: expected a folder of .csv files or an .xlsx file")

    def batches(self, entity: EntityMapping, after: Mark | None,
                batch_size: int) -> Generator[RawBatch, None, None]:
        return self._load().batches(entity, after, batch_size)

    def count(self, entity: EntityMapping, after: Mark | None) -> int | None:
        return self._load().count(entity, after)

    def close(self) -> None:
        if self._sql is not None:
            self._sql.close()
            self._sql = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def csv_encoding(path: Path, probe: int = 1 << 20) -> str:
    """UTF-8 (with or without BOM) when the first MiB decodes as such, else GB18030: Chinese
    HIS exports are often GBK, which GB18030 contains."""
    with path.open("rb") as fh:
        head = fh.read(probe)
    try:
        codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=len(head) < probe)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8-sig"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _csv_row(row: list[str], width: int) -> tuple[str | None, ...]:
    cells = [c if c != "" else None for c in row[:width]]
    cells.extend([None] * (width - len(cells)))
    return tuple(cells)


def _xlsx_cell(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def open_source(location: str) -> Source:
    """A source for an SQLAlchemy URL, a CSV file/folder or an XLSX workbook."""
    if "://" in location:
        return SqlSource(location)
    return FileSource(location)
