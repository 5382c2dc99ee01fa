"""Database engines and sessions. One `Database` per process, built by the composition root."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from core.errors import ConfigError, StoreError, StoreUnavailable

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
P = ParamSpec("P")
R = TypeVar("R")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _store_error(exc: OperationalError) -> StoreError:
    """A lost or locked server is temporary (retried); a store without its tables is not:
    no retry makes them appear."""
    text = str(exc.orig).strip()
    if "no such table" in text:
        return StoreError(f"the database has no tables yet ({text.splitlines()[0]}): "
                          "run `followup init`")
    return StoreUnavailable(f"database unavailable: {exc.orig}")


def create_db_engine(url: str, echo: bool = False) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout. Statement
    parameters (patients' data) are never put into error messages or logs. Raises
    ConfigError for a URL that is not one or names a driver that is not installed."""
    try:
        return _create_db_engine(url, echo)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        shown = make_url(url).render_as_string(hide_password=True) \
            if not isinstance(exc, ArgumentError) else "the value given"
        raise ConfigError("database.url", f"{shown} cannot be used: "
                          f"{str(exc).splitlines()[0][:160]} (e.g. sqlite:///var/followup."
                          "sqlite or postgresql://user:password@host/database)") from None


def _create_db_engine(url: str, echo: bool) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, echo=echo, pool_pre_ping=True, hide_parameters=True)


class Database:
    """Owns the engine and hands out sessions (`with db.session() as s:` commits or rolls back)."""

    def __init__(self, url: str, echo: bool = False) -> None:
        self.url = url
        self.engine = create_db_engine(url, echo=echo)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._executor: ThreadPoolExecutor | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        session = self._sessions()
        try:
            yield session
            session.commit()
        except OperationalError as exc:
            session.rollback()
            raise _store_error(exc) from exc
        except Exception:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """One transaction on a bare connection, for hot paths written as Core statements
        (no ORM unit of work); commits or rolls back, and maps a lost server like `session`."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise _store_error(exc) from exc

    def migrate(self) -> None:
        """Create or upgrade the schema to the newest migration (Alembic)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["connection_engine"] = self.engine
        try:
            command.upgrade(cfg, "head")
        except OperationalError as exc:
            raise StoreError(f"migration failed: {exc.orig}") from exc

    async def call(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run blocking store work off the event loop.

        SQLite gets one worker thread: it has one writer, and writers queued in several
        threads wait in SQLite's busy handler (sleeps of up to 100 ms) instead of in line.
        PostgreSQL gets a few, like its connection pool."""
        if self._executor is None:
            workers = 1 if self.dialect == "sqlite" else 4
            self._executor = ThreadPoolExecutor(workers, thread_name_prefix=f"db-{self.dialect}")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def dispose(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self.engine.dispose()
