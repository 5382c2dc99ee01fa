"""Calling windows: parsing, formatting, and UTC intervals across time zones and DST."""

from __future__ import annotations

import datetime as dt

import pytest

from core.calling_window import CallingWindowError, parse_calling_window

UTC = dt.UTC


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def test_parse_and_format_round_trip() -> None:
    w = parse_calling_window(" 14:00-19:30 , 09:00-11:30")
    assert w.format() == "09:00-11:30,14:00-19:30"
    assert parse_calling_window(w.format()) == w
    assert parse_calling_window("20:00-24:00").format() == "20:00-24:00"


@pytest.mark.parametrize(("text", "problem"), [
    ("25:00-26:00", "does not exist"),
    ("09:60-10:00", "does not exist"),
    ("24:00-24:30", "does not exist"),
    ("11:00-09:00", "ends before"),
    ("09:00-12:00,11:00-13:00", "overlap"),
    ("9-12", "not a span"),
    ("", "empty"),
])
def test_bad_windows_are_refused_with_a_reason(text: str, problem: str) -> None:
    with pytest.raises(CallingWindowError, match=problem):
        parse_calling_window(text)


def test_shanghai_has_no_dst_and_is_utc_plus_8() -> None:
    w = parse_calling_window("09:00-11:30,14:00-19:30")
    assert w.utc_intervals(dt.date(2026, 3, 10), "Asia/Shanghai") == (
        (utc(2026, 3, 10, 1, 0), utc(2026, 3, 10, 3, 30)),
        (utc(2026, 3, 10, 6, 0), utc(2026, 3, 10, 11, 30)),
    )
    assert w.bounds(dt.date(2026, 3, 10), "Asia/Shanghai") == (
        utc(2026, 3, 10, 1, 0), utc(2026, 3, 10, 11, 30))


def test_same_local_hours_move_in_utc_across_spring_forward() -> None:
    w = parse_calling_window("09:00-11:30")
    # New York springs forward on 2026-03-08 at 02:00 (EST -5 -> EDT -4).
    assert w.bounds(dt.date(2026, 3, 7), "America/New_York") == (
        utc(2026, 3, 7, 14, 0), utc(2026, 3, 7, 16, 30))
    assert w.bounds(dt.date(2026, 3, 8), "America/New_York") == (
        utc(2026, 3, 8, 13, 0), utc(2026, 3, 8, 15, 30))


def test_window_across_the_spring_gap_is_an_hour_shorter() -> None:
    w = parse_calling_window("00:00-06:00")
    start, end = w.bounds(dt.date(2026, 3, 8), "America/New_York")
    assert (start, end) == (utc(2026, 3, 8, 5, 0), utc(2026, 3, 8, 10, 0))
    assert end - start == dt.timedelta(hours=5)


def test_span_starting_inside_the_gap_starts_at_the_jump() -> None:
    w = parse_calling_window("02:30-04:00")
    start, end = w.bounds(dt.date(2026, 3, 8), "America/New_York")
    assert start == utc(2026, 3, 8, 7, 0)  # 03:00 EDT, the first moment after the jump
    assert end == utc(2026, 3, 8, 8, 0)  # 04:00 EDT


def test_window_across_fall_back_is_an_hour_longer() -> None:
    w = parse_calling_window("00:00-06:00")
    start, end = w.bounds(dt.date(2026, 11, 1), "America/New_York")
    assert (start, end) == (utc(2026, 11, 1, 4, 0), utc(2026, 11, 1, 11, 0))
    # A span at the repeated hour covers both occurrences of it.
    s2, e2 = parse_calling_window("01:00-01:30").bounds(dt.date(2026, 11, 1), "America/New_York")
    assert s2 == utc(2026, 11, 1, 5, 0) and e2 == utc(2026, 11, 1, 6, 30)


def test_european_transition_and_southern_hemisphere() -> None:
    w = parse_calling_window("09:00-10:00")
    # Berlin: CET (+1) before 2026-03-29, CEST (+2) from then.
    assert w.bounds(dt.date(2026, 3, 28), "Europe/Berlin")[0] == utc(2026, 3, 28, 8, 0)
    assert w.bounds(dt.date(2026, 3, 29), "Europe/Berlin")[0] == utc(2026, 3, 29, 7, 0)
    # Sydney leaves DST on 2026-04-05 (+11 -> +10).
    assert w.bounds(dt.date(2026, 4, 4), "Australia/Sydney")[0] == utc(2026, 4, 3, 22, 0)
    assert w.bounds(dt.date(2026, 4, 5), "Australia/Sydney")[0] == utc(2026, 4, 4, 23, 0)


def test_contains_and_next_opening() -> None:
    w = parse_calling_window("09:00-11:30,14:00-19:30")
    tz = "Asia/Shanghai"
    assert w.contains(utc(2026, 3, 10, 1, 0), tz)  # 09:00 local
    assert not w.contains(utc(2026, 3, 10, 3, 30), tz)  # 11:30 local: the end is open
    assert not w.contains(utc(2026, 3, 10, 12, 0), tz)  # 20:00 local
    assert w.next_opening(utc(2026, 3, 10, 4, 0), tz) == utc(2026, 3, 10, 6, 0)
    assert w.next_opening(utc(2026, 3, 10, 2, 0), tz) == utc(2026, 3, 10, 2, 0)
    # After the last span: tomorrow 09:00, unless tomorrow is a holiday.
    assert w.next_opening(utc(2026, 3, 10, 12, 0), tz) == utc(2026, 3, 11, 1, 0)
    assert w.next_opening(utc(2026, 3, 10, 12, 0), tz,
                          skip=frozenset({dt.date(2026, 3, 11)})) == utc(2026, 3, 12, 1, 0)


def test_unknown_time_zone_is_an_error() -> None:
    with pytest.raises(CallingWindowError, match="unknown time zone"):
        parse_calling_window("09:00-10:00").bounds(dt.date(2026, 1, 1), "Mars/Olympus")
