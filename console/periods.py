"""Local days and months (the hospital's time zone) as UTC ranges for queries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import TypeVar
from zoneinfo import ZoneInfo

from core.clock import UTC

T = TypeVar("T")
# Ids per IN (...) list: far below SQLite's bound-parameter limit.
ID_CHUNK = 5000


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def local_today(now: dt.datetime, tz: str) -> dt.date:
    return now.astimezone(ZoneInfo(tz)).date()


def local_time(value: dt.datetime | None, tz: str, seconds: bool = False,
               date_only: bool = False) -> str:
    """A stored (UTC) time as a person in the hospital reads it: local, with the offset
    shown ("2026-03-10 09:00 UTC+8"); `date_only`: the local date. Empty for None."""
    if value is None:
        return ""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    local = aware.astimezone(ZoneInfo(tz))
    if date_only:
        return local.date().isoformat()
    offset = local.utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    zone = f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")
    return f"{local:%Y-%m-%d %H:%M{':%S' if seconds else ''}} {zone}"


def last_finished_month(now: dt.datetime, tz: str) -> dt.date:
    """The first day of the last month that has ended in `tz` (a report's default: the
    running month still has calls open)."""
    return previous_month(local_today(now, tz).replace(day=1))


def day_range(day: dt.date, tz: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the local `day`, in UTC."""
    zone = ZoneInfo(tz)
    start = dt.datetime.combine(day, dt.time(), zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def next_month(first: dt.date) -> dt.date:
    return dt.date(first.year + (first.month == 12), first.month % 12 + 1, 1)


def previous_month(first: dt.date) -> dt.date:
    return dt.date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)


def month_range(first: dt.date, tz: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the local month beginning on `first`, in UTC."""
    start, _ = day_range(first, tz)
    end, _ = day_range(next_month(first), tz)
    return start, end


def month_key(first: dt.date) -> str:
    return f"{first.year:04d}-{first.month:02d}"
