"""One HIS sync run: read after the stored watermark, parse, upsert, quarantine, commit.

`HisSync(...).run()` syncs patients, then encounters (an encounter needs its patient), and
records a `his_sync_runs` row with what it read, inserted, updated, left unchanged and
rejected, and how long it took. Per entity:

1. load the last committed `Mark` (watermark, key) for this source;
2. stream batches after it from the `Source`; parse them on the worker pool
   (`BatchParser`) while the next batch is read; write each batch, its rejects and its
   mark in one transaction (`StoreWriter.write_batch`), in order;
3. a `SourceUnavailable` (temporary) failure: write the batches already read, wait
   (exponential backoff, `sleep` is injected), and reopen the source after the last
   committed mark; give up after `retries` consecutive failures without progress.
   `SourceError` (permanent) ends the run at once.

Each run starts at the stored watermark itself, re-reading the rows that share it: HIS
clocks and batch exports give many rows one timestamp, and a row that arrives later with the
watermark's timestamp and a lower key than the last one read is still found. With an
`overlap` (the `his.overlap_minutes` setting) a date/time watermark is moved back by it
first, for rows committed late with an earlier time.

Incremental reading trusts the HIS to move a row's watermark forward when the row changes:
a row changed without a newer watermark (or fixed in place after it was quarantined) is only
seen again by a `full=True` run.

A run that dies (SIGKILL, power cut) leaves its run row `running`; the next run marks it
failed and resumes from the last committed mark, ending with the same store an uninterrupted
run would have made. `full=True` forgets the marks and re-reads everything: still changes
nothing that is already in sync.

Raises SourceError / SourceUnavailable (after retries) / StoreUnavailable; the run row
is marked failed with the error first.
"""

from __future__ import annotations

import datetime as dt
import gc
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from queue import Empty, Full, Queue
from typing import Protocol

from sqlalchemy import exc as sa_exc

from core.clock import Clock
from core.enums import SyncRunStatus
from core.errors import SourceUnavailable, StoreUnavailable
from core.store.db import Database
from hisync.dates import zone
from hisync.encoding import encoding_for
from hisync.mapping import ENTITIES, HisMapping
from hisync.parallel import BatchParser
from hisync.records import ParsedBatch
from hisync.rows import ParserConfig
from hisync.sources import Mark, RawBatch, Source
from hisync.store_writer import Counts, StoreWriter


class ProgressSink(Protocol):
    """Told how far a run has got (the CLI draws a bar; tests may count)."""

    def start(self, entity: str, total: int | None) -> None: ...

    def advance(self, rows: int) -> None: ...

    def finish(self) -> None: ...


@dataclass(frozen=True)
class SyncOptions:
    batch_size: int = 5000
    retries: int = 5
    workers: int = 1
    full: bool = False
    backoff_s: float = 0.5  # first wait; doubles per consecutive failure
    backoff_max_s: float = 30.0
    local_until_warm: bool = True  # parse in-process while the worker pool starts
    # re-read this far behind a date/time watermark: rows an HIS commits late with an
    # earlier time (a slow transaction, a clock behind) are still found
    overlap: dt.timedelta = dt.timedelta(0)


@dataclass(frozen=True)
class LocaleDefaults:
    """The hospital's defaults for values the HIS leaves out."""

    region: str = "CN"
    timezone: str = "Asia/Shanghai"
    language: str = "zh-CN"


@dataclass
class SyncReport:
    run_id: int
    source: str
    status: SyncRunStatus
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    entities: dict[str, Counts] = field(default_factory=dict)
    retries: int = 0
    batches_in_workers: int = 0
    error: str | None = None

    @property
    def totals(self) -> Counts:
        total = Counts()
        for c in self.entities.values():
            total.add(c)
        return total

    @property
    def duration_s(self) -> float:
        if self.finished_at is None:
            return 0.0
        return (self.finished_at - self.started_at).total_seconds()


@contextmanager
def rare_gc_passes() -> Iterator[None]:
    """Fewer cyclic-GC passes while a run allocates millions of short-lived tuples (they hold
    no cycles; reference counting frees them). The previous thresholds come back after."""
    before = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)


_DONE = object()


def read_ahead(batches: Generator[RawBatch, None, None],
               depth: int) -> Generator[RawBatch, None, None]:
    """Read the source on a thread, up to `depth` batches ahead of the caller.

    SQLite and most DBAPI drivers release the GIL while they fetch, so reading the HIS
    overlaps with writing the store. Errors from the source are re-raised in the caller, in
    order; closing this generator stops the reader and closes the source's cursor.
    """
    queue: Queue[object] = Queue(maxsize=depth)
    stop = threading.Event()

    def pump() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        queue.put(batch, timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put(_DONE)
        except Exception as exc:  # handed to the caller, who decides (retry or fail)
            queue.put(exc)
        finally:
            batches.close()

    reader = threading.Thread(target=pump, name="his-reader", daemon=True)
    reader.start()
    try:
        while True:
            item = queue.get()
            if item is _DONE:
                return
            if isinstance(item, Exception):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while reader.is_alive():
            try:
                queue.get_nowait()
            except Empty:
                reader.join(timeout=0.05)


def behind(watermark: str, overlap: dt.timedelta) -> str:
    """`watermark` moved back by `overlap` when it is a date/time, written as it was
    (separator and precision), so the source compares it as before; unchanged otherwise
    (a number, or no overlap)."""
    if not overlap:
        return watermark
    try:
        at = dt.datetime.fromisoformat(watermark)
    except ValueError:
        return watermark
    precision = "microseconds" if "." in watermark else "seconds"
    return (at - overlap).isoformat(sep=" " if " " in watermark else "T", timespec=precision)


def error_text(exc: BaseException) -> str:
    """What went wrong, for the run log, without the data of the rows involved: a database
    error gives its driver's first line (PostgreSQL's DETAIL line, "Key (mrn)=(...)", and
    SQLAlchemy's statement and parameters are left out)."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None:
        first = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else ""
        return f"{type(exc.orig).__name__}: {first}"[:300]
    if isinstance(exc, sa_exc.StatementError):
        return f"{type(exc).__name__}: the store refused a statement"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}"[:300]


class HisSync:
    """Syncs one source into the store. Build one per run."""

    def __init__(self, db: Database, source: Source, mapping: HisMapping, clock: Clock,
                 options: SyncOptions | None = None, defaults: LocaleDefaults | None = None,
                 progress: ProgressSink | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 source_id: str = "") -> None:
        self.db = db
        self.source = source
        self.mapping = mapping
        self.clock = clock
        self.options = options or SyncOptions()
        d = defaults or LocaleDefaults()
        today = clock.now().astimezone(zone(mapping.timezone or d.timezone)).date()
        self.config = ParserConfig(mapping=mapping, region=d.region, timezone=d.timezone,
                                   language=d.language, encoding=encoding_for(db.dialect),
                                   today=today)
        self.progress = progress
        self.sleep = sleep
        # the identity watermarks and the quarantine are kept under: a configured id, so
        # the same HIS read from another folder or with another URL is the same source
        self.writer = StoreWriter(db, source_id or source.name)

    def run(self) -> SyncReport:
        with rare_gc_passes():
            return self._run()

    def _run(self) -> SyncReport:
        report = SyncReport(0, self.source.name, SyncRunStatus.RUNNING, self.clock.now())
        try:
            report.run_id = self.writer.begin_run(report.started_at)
            self.writer.ensure_departments(self.mapping.departments.values())
        except sa_exc.OperationalError as exc:
            raise StoreUnavailable(f"store unavailable: {exc.orig}") from exc
        if self.options.full:
            self.writer.reset_marks()
        marks_from: list[str] = []
        marks_to: list[str] = []
        try:
            with BatchParser(self.config, self.options.workers,
                             self.options.local_until_warm) as parser:
                for entity in ENTITIES:
                    start = self.writer.load_mark(entity)
                    if start is not None:
                        marks_from.append(start.watermark)
                        # every row AT the watermark again, not only those after its key:
                        # a row that arrived since with the same time and a lower key
                        # would never be read (unchanged rows cost a hash compare)
                        start = Mark(behind(start.watermark, self.options.overlap), None)
                    counts, end = self._sync_entity(entity, start, parser, report)
                    report.entities[entity] = counts
                    if end is not None:
                        marks_to.append(end.watermark)
                report.batches_in_workers = parser.remote_batches
            report.status = SyncRunStatus.COMPLETED
        except Exception as exc:
            report.status = SyncRunStatus.FAILED
            report.error = error_text(exc)
            raise
        finally:
            report.finished_at = self.clock.now()
            self.writer.finish_run(report.run_id, report.finished_at, report.totals,
                                   report.status,
                                   (min(marks_from, default=None), max(marks_to, default=None)),
                                   report.error)
        return report

    def _sync_entity(self, entity: str, mark: Mark | None, parser: BatchParser,
                     report: SyncReport) -> tuple[Counts, Mark | None]:
        spec = self.mapping.entity(entity)
        columns = spec.source_columns
        self.writer.load_open_rejects(entity)
        counts = Counts()
        opts = self.options
        in_flight = max(2, 2 * parser.workers)
        if self.progress is not None:
            self.progress.start(entity, self.source.count(spec, mark))
        failures = 0
        pending: deque[tuple[RawBatch, Future[ParsedBatch]]] = deque()

        def write_oldest() -> None:
            nonlocal mark, failures
            batch, future = pending.popleft()
            try:
                done = self.writer.write_batch(entity, columns, batch.rows, future.result(),
                                               batch.last, report.run_id, self.clock.now())
            except sa_exc.OperationalError as exc:
                raise StoreUnavailable(f"store unavailable: {exc.orig}") from exc
            counts.add(done)
            if batch.last is not None:
                mark = batch.last
            failures = 0
            if self.progress is not None:
                self.progress.advance(len(batch.rows))

        while True:
            try:
                with closing(read_ahead(self.source.batches(spec, mark, opts.batch_size),
                                        in_flight)) as batches:
                    for batch in batches:
                        pending.append((batch, parser.submit(entity, batch.rows)))
                        if len(pending) >= in_flight:
                            write_oldest()
                while pending:
                    write_oldest()
                break
            except SourceUnavailable:
                while pending:  # what was read before the failure is good: keep it
                    write_oldest()
                failures += 1
                report.retries += 1
                if failures > opts.retries:
                    raise
                self.sleep(min(opts.backoff_max_s, opts.backoff_s * 2 ** (failures - 1)))
        if self.progress is not None:
            self.progress.finish()
        return counts, mark
