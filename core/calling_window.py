"""Calling windows: the local hours in which a patient may be called.

A window is written as comma-separated local spans, `"09:00-11:30,14:00-19:30"`. It is
parsed once into a `CallingWindow` and turned into UTC intervals for one local date in one
time zone. Daylight-saving transitions are handled on the wall clock: a span that starts in
a spring-forward gap starts when the clock jumps, a span that ends in a gap ends there too,
and a wall time repeated by a fall-back transition starts at its first occurrence and ends
at its last (the window covers every moment the wall clock shows a time inside it).

The planner stores the bounds of the due date's windows on each task; the dialer reuses
`CallingWindow.contains` / `next_opening` to stay inside them. `CallingRules` adds the
hospital's own hours and holidays (the dialer's claims and a callback a person schedules).
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.errors import FollowupError

UTC = dt.UTC
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_MINUTES_PER_DAY = 24 * 60


class CallingWindowError(FollowupError, ValueError):
    """A calling window string or time zone is malformed; the message says what is wrong."""

    code = "calling_window_invalid"


@dataclass(frozen=True, slots=True)
class Span:
    """One local span in minutes after midnight; `end` may be 1440 ("24:00")."""

    start: int
    end: int

    def format(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"


@dataclass(frozen=True, slots=True)
class CallingWindow:
    """Sorted, non-overlapping local spans of one day."""

    spans: tuple[Span, ...]

    def __hash__(self) -> int:  # windows are cache keys on hot paths: hash the text once
        return hash(self.format())

    def format(self) -> str:
        """The canonical text form (what `parse_calling_window` reads back)."""
        return _format(self.spans)

    def __str__(self) -> str:
        return self.format()

    def utc_intervals(self, day: dt.date,
                      timezone: str) -> tuple[tuple[dt.datetime, dt.datetime], ...]:
        """The UTC intervals of this window on the local date `day` in `timezone`.

        Raises CallingWindowError for an unknown time zone.
        """
        return _utc_intervals(self, day, timezone)

    def bounds(self, day: dt.date, timezone: str) -> tuple[dt.datetime, dt.datetime]:
        """UTC start of the first span and end of the last span on `day`."""
        intervals = _utc_intervals(self, day, timezone)
        if not intervals:  # every span fell into a DST gap: an empty window at the jump
            jump = _wall_to_utc(day, self.spans[0].start, zone(timezone), first=True)
            return jump, jump
        return intervals[0][0], intervals[-1][1]

    def contains(self, instant: dt.datetime, timezone: str) -> bool:
        """Is the aware `instant` inside one of the spans of its local day?"""
        local_day = instant.astimezone(zone(timezone)).date()
        for day in (local_day - dt.timedelta(days=1), local_day):
            for start, end in _utc_intervals(self, day, timezone):
                if start <= instant < end:
                    return True
        return False

    def next_opening(self, after: dt.datetime, timezone: str,
                     skip: frozenset[dt.date] = frozenset(),
                     horizon_days: int = 366) -> dt.datetime | None:
        """The first instant >= `after` inside a span, skipping local dates in `skip`
        (holidays). None if nothing opens within `horizon_days`."""
        local_day = after.astimezone(zone(timezone)).date()
        for n in range(-1, horizon_days + 1):
            day = local_day + dt.timedelta(days=n)
            if day in skip:
                continue
            for start, end in _utc_intervals(self, day, timezone):
                if end <= after:
                    continue
                return max(start, after)
        return None


def parse_calling_window(text: str) -> CallingWindow:
    """Parse `"09:00-11:30,14:00-19:30"`. Raises CallingWindowError saying which span is bad."""
    if not isinstance(text, str) or not text.strip():
        raise CallingWindowError("empty calling window (expected e.g. 09:00-11:30,14:00-19:30)")
    return _parse_cached(text.strip())


@lru_cache(maxsize=256)
def _parse_cached(text: str) -> CallingWindow:
    spans: list[Span] = []
    for part in text.split(","):
        m = _SPAN.match(part)
        if m is None:
            raise CallingWindowError(f"{part.strip()!r} is not a span like 09:00-11:30")
        sh, sm, eh, em = (int(g) for g in m.groups())
        start = _minutes(sh, sm, part, allow_24=False)
        end = _minutes(eh, em, part, allow_24=True)
        if end <= start:
            raise CallingWindowError(f"{part.strip()!r} ends before it starts")
        spans.append(Span(start, end))
    spans.sort(key=lambda s: s.start)
    for prev, cur in itertools.pairwise(spans):
        if cur.start < prev.end:
            raise CallingWindowError(f"spans {prev.format()} and {cur.format()} overlap")
    return CallingWindow(tuple(spans))


@lru_cache(maxsize=256)
def _format(spans: tuple[Span, ...]) -> str:
    return ",".join(span.format() for span in spans)


def _minutes(hour: int, minute: int, part: str, allow_24: bool) -> int:
    if minute > 59 or hour > 24 or (hour == 24 and (minute != 0 or not allow_24)):
        raise CallingWindowError(f"{part.strip()!r} has a time that does not exist on a clock")
    return hour * 60 + minute


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@lru_cache(maxsize=512)
def zone(timezone: str) -> ZoneInfo:
    """The ZoneInfo for an IANA name. Raises CallingWindowError if unknown."""
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CallingWindowError(f"unknown time zone {timezone!r}") from exc


@lru_cache(maxsize=65536)
def _utc_intervals(window: CallingWindow, day: dt.date,
                   timezone: str) -> tuple[tuple[dt.datetime, dt.datetime], ...]:
    tz = zone(timezone)
    out: list[tuple[dt.datetime, dt.datetime]] = []
    for span in window.spans:
        start = _wall_to_utc(day, span.start, tz, first=True)
        end = _wall_to_utc(day, span.end, tz, first=False)
        if end > start:
            out.append((start, end))
    return tuple(out)


def _wall_to_utc(day: dt.date, minutes: int, tz: ZoneInfo, first: bool) -> dt.datetime:
    """The UTC instant the wall clock shows `minutes` on `day`.

    Ambiguous (fall back): the first occurrence if `first`, else the last. Nonexistent
    (spring forward): the instant of the jump.
    """
    if minutes >= _MINUTES_PER_DAY:
        day = day + dt.timedelta(days=1)
        minutes -= _MINUTES_PER_DAY
    wall = dt.datetime.combine(day, dt.time(minutes // 60, minutes % 60))
    early = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    late = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if early == late:
        return early
    if early < late:  # ambiguous: the wall time happens twice
        return early if first else late
    # Nonexistent: `late` (post-transition offset) lies before the jump, `early` after it.
    return _transition_between(late, early, tz)


def _transition_between(lo: dt.datetime, hi: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The first instant in (lo, hi] whose UTC offset differs from lo's (binary search)."""
    offset_lo = lo.astimezone(tz).utcoffset()
    low, high = lo, hi
    while high - low > dt.timedelta(seconds=1):
        mid = low + (high - low) / 2
        if mid.astimezone(tz).utcoffset() == offset_lo:
            low = mid
        else:
            high = mid
    return high.replace(microsecond=0)


@dataclass(frozen=True)
class CallingRules:
    """Where and when calls may be made, besides each task's own window."""

    hospital_hours: CallingWindow
    holidays: frozenset[dt.date]
    max_calls_per_patient_per_day: int = 3

    @classmethod
    def from_settings(cls, hours: str, holidays: list[str],
                      max_calls_per_patient_per_day: int = 3) -> CallingRules:
        return cls(parse_calling_window(hours),
                   frozenset(dt.date.fromisoformat(d) for d in holidays),
                   max_calls_per_patient_per_day)

    def allowed(self, window: CallingWindow, timezone: str, now: dt.datetime,
                hospital_tz: str) -> bool:
        local_day = now.astimezone(zone(timezone)).date()
        return (local_day not in self.holidays and window.contains(now, timezone)
                and self.hospital_hours.contains(now, hospital_tz))

    def next_allowed(self, window: CallingWindow, timezone: str, after: dt.datetime,
                     hospital_tz: str) -> dt.datetime | None:
        """The first instant >= after inside both windows, skipping holidays."""
        t: dt.datetime | None = after
        for _ in range(64):
            if t is None:
                return None
            t = window.next_opening(t, timezone, skip=self.holidays)
            if t is None:
                return None
            h = self.hospital_hours.next_opening(t, hospital_tz, skip=self.holidays)
            if h is None:
                return None
            if h == t:
                return t
            t = h
        return None
