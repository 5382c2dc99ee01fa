"""Counting a carrier's caps from the calls it saw: the peak of concurrent calls and the
most call setups within a window. Used by the two-server tier and bench/servers.py, both
on the far end's own record of each call (start, end)."""

from __future__ import annotations

from collections.abc import Iterable


def peak_concurrent(spans: Iterable[tuple[float, float | None]]) -> int:
    """The most calls up at once; a call without an end counts as still up. An end and a
    start at the same moment: the end first (the channel was free)."""
    spans = list(spans)
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans if b is not None])
    peak = now = 0
    for _, step in edges:
        now += step
        peak = max(peak, now)
    return peak


def most_starts_within(starts: Iterable[float], window_s: float) -> int:
    """The most calls that started within any `window_s` (from one start on)."""
    ordered = sorted(starts)
    most, first = 0, 0
    for i, t in enumerate(ordered):
        while ordered[first] <= t - window_s:
            first += 1
        most = max(most, i - first + 1)
    return most
