"""Parsing batches on every core while the main process reads and writes.

`BatchParser.submit` returns a future; results are consumed in submission order, so the
output is the same whatever the number of workers. With one worker everything runs in this
process (no pickling, easiest to debug). With more, a pool of spawned processes parses while
the caller keeps reading the source and writing the store; the caller bounds the batches in
flight (see `HisSync`), so memory stays flat however large the source.

Results come back as plain tagged tuples (`to_wire` / `from_wire`): NamedTuples pickle
through Python code, ~15 microseconds each, which would cost more than the parsing saves.
Workers watch their parent: if it is killed (SIGKILL), they exit instead of lingering.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from core.enums import RejectReason
from hisync.records import Accepted, Duplicate, Outcome, Reject
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


def parse_in_worker(entity: str, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Parse in a pool worker; the result travels back as plain tuples (`to_wire`)."""
    return to_wire(_PARSERS[entity].parse_batch(rows))


# NamedTuples pickle through a Python-level __reduce__ (~15 us each); plain tuples are
# pickled in C. Outcomes cross the process boundary tagged: A(ccepted), D(uplicate), R(eject).
def to_wire(outcomes: list[Outcome]) -> list[tuple[Any, ...]]:
    wire: list[tuple[Any, ...]] = []
    for o in outcomes:
        if type(o) is Accepted:
            wire.append(("A", *o))
        elif type(o) is Duplicate:
            wire.append(("D", o.key))
        else:
            assert isinstance(o, Reject)
            wire.append(("R", o.row_key, o.field, o.reason.value, o.detail, o.raw, o.raw_json,
                         o.raw_hash))
    return wire


def from_wire(wire: list[tuple[Any, ...]]) -> list[Outcome]:
    new = tuple.__new__
    out: list[Outcome] = []
    for t in wire:
        tag = t[0]
        if tag == "A":
            out.append(new(Accepted, t[1:]))
        elif tag == "D":
            out.append(Duplicate(t[1]))
        else:
            out.append(Reject(t[1], t[2], RejectReason(t[3]), t[4], t[5], t[6], t[7]))
    return out


def _ready() -> bool:
    return True


def _init(config: ParserConfig, parent: int) -> None:
    init_worker(config)
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

    def submit(self, entity: str, rows: list[tuple[Any, ...]]) -> Future[list[Outcome]]:
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
            decoded: Future[list[Outcome]] = Future()

            def _decode(f: Future[list[tuple[Any, ...]]]) -> None:
                try:
                    decoded.set_result(from_wire(f.result()))
                except Exception as exc:  # a worker died or raised: surface it in order
                    decoded.set_exception(exc)

            wire.add_done_callback(_decode)
            return decoded
        done: Future[list[Outcome]] = Future()
        done.set_result(self._local[entity].parse_batch(rows))
        return done

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> BatchParser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
