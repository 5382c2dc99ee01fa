"""In-memory HIS sources for tests and demos (the fakes of the `Source` seam).

`InMemorySource` holds tables as lists of dicts and honours the same contract as
`SqlSource`: (watermark, key) order with empty values first, resume strictly after a
`Mark`, groups never split. `FlakySource` wraps any source and goes down
(`SourceUnavailable`) after a given number of batches, for a given number of attempts.
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import closing
from typing import Any

from core.errors import SourceError, SourceUnavailable
from hisync.mapping import EntityMapping
from hisync.sources import Mark, RawBatch, Source, regroup


def _sort_key(value: Any) -> tuple[int, str]:
    return (0, "") if value is None else (1, str(value))


class InMemorySource:
    """Tables held in memory: {table name: [row dict, ...]}."""

    def __init__(self, tables: dict[str, list[dict[str, Any]]], name: str = "memory") -> None:
        self.tables = tables
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def _rows(self, entity: EntityMapping, after: Mark | None) -> list[tuple[Any, ...]]:
        if entity.table is None or entity.table not in self.tables:
            raise SourceError(f"no such table {entity.table!r} in memory")
        cols = entity.source_columns
        rows = [tuple(r.get(c) for c in cols) for r in self.tables[entity.table]]
        wm, key = cols.index(entity.watermark), cols.index(entity.key)
        rows.sort(key=lambda r: (_sort_key(r[wm]), _sort_key(r[key])))
        if after is None:
            return rows
        mark = (_sort_key(after.watermark), _sort_key(after.key))
        if after.key is None:
            return [r for r in rows if _sort_key(r[wm]) >= mark[0]]
        return [r for r in rows if (_sort_key(r[wm]), _sort_key(r[key])) > mark]

    def batches(self, entity: EntityMapping, after: Mark | None,
                batch_size: int) -> Generator[RawBatch, None, None]:
        rows = self._rows(entity, after)
        cols = entity.source_columns
        parts = (rows[i:i + batch_size] for i in range(0, len(rows), batch_size))
        return regroup(parts, cols.index(entity.watermark), cols.index(entity.key))

    def count(self, entity: EntityMapping, after: Mark | None) -> int | None:
        return len(self._rows(entity, after))

    def close(self) -> None:
        pass


class FlakySource:
    """Goes down after `after_batches` batches and stays down for `failures` attempts.

    The first failure comes after `after_batches` good batches; each later attempt fails at
    once, until `failures` failures have happened; then the source works again.
    """

    def __init__(self, inner: Source, failures: int, after_batches: int = 0) -> None:
        self.inner = inner
        self.failures_left = failures
        self.after_batches = after_batches
        self.opened = 0

    @property
    def name(self) -> str:
        return self.inner.name

    def _fail(self) -> SourceUnavailable:
        self.failures_left -= 1
        self.after_batches = 0
        return SourceUnavailable("connection reset by the HIS (simulated)")

    def batches(self, entity: EntityMapping, after: Mark | None,
                batch_size: int) -> Generator[RawBatch, None, None]:
        self.opened += 1
        with closing(self.inner.batches(entity, after, batch_size)) as inner:
            for n, batch in enumerate(inner):
                if self.failures_left > 0 and n == self.after_batches:
                    raise self._fail()
                yield batch
        if self.failures_left > 0 and self.after_batches == 0:
            raise self._fail()

    def count(self, entity: EntityMapping, after: Mark | None) -> int | None:
        return self.inner.count(entity, after)

    def close(self) -> None:
        self.inner.close()
