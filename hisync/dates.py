"""HIS dates and times: ISO 8601 first (cheap), then common Chinese shapes, then the
mapping's `date_formats`; naive times are the hospital's local time, stored as UTC."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.clock import UTC


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


class LocalTime:
    """Naive HIS local time -> aware UTC, fast for zones without DST in the modern era.

    `ZoneInfo` conversion costs ~2 microseconds. Most hospital zones (Asia/Shanghai since
    1992) have one fixed offset: we probe the zone monthly from `_FIXED_FROM` to 2040 and,
    if the offset never moves, subtract it directly for times after `_FIXED_FROM`; earlier
    times, and zones with DST, take the exact `ZoneInfo` path.
    """

    _FIXED_FROM = dt.datetime(1992, 1, 1)

    def __init__(self, zone: dt.tzinfo) -> None:
        self.zone = zone
        probes = {zone.utcoffset(dt.datetime(y, m, 15)) for y in range(1992, 2041)
                  for m in range(1, 13)}
        only = probes.pop() if len(probes) == 1 else None
        self._offset: dt.timedelta | None = only

    def to_utc(self, naive: dt.datetime) -> dt.datetime:
        if self._offset is not None and naive >= self._FIXED_FROM:
            return (naive - self._offset).replace(tzinfo=UTC)
        return naive.replace(tzinfo=self.zone).astimezone(UTC)


def _iso_candidate(value: str) -> str:
    """Common non-ISO separators made ISO: 2026/03/01, 2026.03.01, 2026年3月1日 (padded)."""
    if "年" in value:
        value = value.replace("年", "-").replace("月", "-").replace("日", " ").strip()
        head, _, tail = value.partition(" ")
        parts = head.split("-")
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            head = f"{parts[0]}-{int(parts[1]):02d}-{int(parts[2]):02d}"
        value = f"{head} {tail}".strip()
    return value.replace("/", "-") if value[:4].isdigit() else value


def parse_date(value: str, formats: Sequence[str]) -> dt.date | None:
    """ISO 8601 (also with / or 年月日 separators) first, then `formats`; None if nothing fits."""
    candidate = value
    for _ in range(2):
        try:
            return dt.date.fromisoformat(candidate)
        except ValueError:
            pass
        try:
            return dt.datetime.fromisoformat(candidate).date()
        except ValueError:
            pass
        candidate = _iso_candidate(value)
        if candidate == value:
            break
    for fmt in formats:
        try:
            return dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    return None


def parse_datetime(value: str, formats: Sequence[str],
                   local: LocalTime | dt.tzinfo) -> dt.datetime | None:
    """A HIS timestamp as aware UTC. Naive values are local time (`local`)."""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = dt.datetime.fromisoformat(_iso_candidate(value))
        except ValueError:
            for fmt in formats:
                try:
                    parsed = dt.datetime.strptime(value, fmt)
                    break
                except ValueError:
                    continue
            else:
                return None
    if parsed.tzinfo is not None:
        return parsed.astimezone(UTC)
    if isinstance(local, LocalTime):
        return local.to_utc(parsed)
    return parsed.replace(tzinfo=local).astimezone(UTC)
