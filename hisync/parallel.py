"""Parsing batches on every core while the main process reads and writes.

`BatchParser.submit` returns a future; results are consumed in submission order, so the
output is the same whatever the number of workers. With one worker everything runs in this
process (no pickling, easiest to debug). With more, a pool of spawned processes parses while
the caller keeps reading the source and writing the store; the caller bounds the batches in
flight (see `HisSync`), so memory stays flat however large the source.

Each batch is summarised where it is parsed (`summarize`: one row per key, counts, rejects)
and comes back as plain tuples (`to_wire` / `from_wire`): NamedTuples pickle through Python
code, ~15 microseconds each, which would cost more than the parsing saves.
Workers watch their parent: if it is killed (SIGKILL), they exit instead of lingering.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from core.enums import RejectReason
from hisync.records import ParsedBatch, Reject, summarize
from hisync.rows import ParserConfig, RowParser


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(1)


_PARSERS: dict[str, RowParser] = {}


def init_worker(config: ParserConfig) -> None:
    """Process-pool initializer: build the parsers once per worker."""
    _PARSERS.clear()
    for entity in ("patients", "encounters"):
        _PARSERS[entity] = RowParser(config, entity)


def parse_in_worker(entity: str, rows: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """Parse in a pool worker; the result travels back as plain tuples (`to_wire`)."""
    return to_wire(summarize(_PARSERS[entity].parse_batch(rows)))


def to_wire(batch: ParsedBatch) -> tuple[Any, ...]:
    rejects = [(r.row_key, r.field, r.reason.value, r.detail, r.raw, r.raw_json, r.raw_hash)
               for r in batch.rejects]
    return batch.accepted, batch.unchanged, rejects


def from_wire(wire: tuple[Any, ...]) -> ParsedBatch:
    accepted, unchanged, rejects = wire
    return ParsedBatch(accepted, unchanged,
                       [Reject(k, f, RejectReason(r), d, raw, j, h)
                        for k, f, r, d, raw, j, h in rejects])


def _ready() -> bool:
    return True


def _init(config: ParserConfig, parent: int) -> None:
    init_worker(config)
    # Parsing allocates millions of short-lived tuples and makes no reference cycles: the
    # cyclic collector would walk them every 700 allocations for nothing (~15% of the time).
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


class BatchParser:
    """Parses raw batches into outcomes, in-process or in a process pool."""

    def __init__(self, config: ParserConfig, workers: int, local_until_warm: bool = True) -> None:
        self.workers = workers
        self.local_until_warm = local_until_warm
        self.remote_batches = 0
        self._config = config
        self._local = {e: RowParser(config, e) for e in ("patients", "encounters")}
        self._pool: ProcessPoolExecutor | None = None
        self._warm: Future[bool] | None = None
        self._submitted = 0

    def submit(self, entity: str, rows: list[tuple[Any, ...]]) -> Future[ParsedBatch]:
        self._submitted += 1
        if self._pool is None and self.workers > 1 and self._submitted > 1:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init, initargs=(self._config, os.getpid()))
            self._warm = self._pool.submit(_ready)
            if not self.local_until_warm:
                self._warm.result()
        # Until a worker has started (imports take a second), keep parsing here.
        if self._pool is not None and self._warm is not None and self._warm.done():
            self.remote_batches += 1
            wire = self._pool.submit(parse_in_worker, entity, rows)
            decoded: Future[ParsedBatch] = Future()

            def _decode(f: Future[tuple[Any, ...]]) -> None:
                try:
                    decoded.set_result(from_wire(f.result()))
                except Exception as exc:  # a worker died or raised: surface it in order
                    decoded.set_exception(exc)

            wire.add_done_callback(_decode)
            return decoded
        done: Future[ParsedBatch] = Future()
        done.set_result(summarize(self._local[entity].parse_batch(rows)))
        return done

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> BatchParser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
