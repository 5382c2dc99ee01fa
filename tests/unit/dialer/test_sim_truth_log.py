"""The truth log keeps what simulated patients did, line by line, and survives a torn line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from core.clock import FakeClock
from dialer.sim.truth_log import TruthEntry, TruthLog, handled_replies, read_truth
from ivr.channel import InputEnd
from ivr.sim_channel import SimEvent, SimEventKind, TurnKind

T0 = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)


def turn(seq: int, key: str = "s/q.pain") -> SimEvent:
    return SimEvent(seq, SimEventKind.TURN, TurnKind.DIGITS, key, seq * 1000)


def delivered(seq: int, keys: str = "1", key: str = "s/q.pain") -> SimEvent:
    return SimEvent(seq, SimEventKind.DELIVERED, TurnKind.DIGITS, key, seq * 1000,
                    keys=keys, digits=keys.rstrip("#"), end=InputEnd.DIGITS)


def test_entries_round_trip_with_the_clock_time(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    path = tmp_path / "truth" / "sim.jsonl"
    spoken = SimEvent(3, SimEventKind.DELIVERED, TurnKind.RECORD, "s/q.comment", 9000,
                      end=InputEnd.TIMEOUT, said="간호사가 친절했습니다",
                      clip=tmp_path / "call-7-answer-1.wav", clip_offset_ms=7000, clip_ms=1500)
    hung = SimEvent(4, SimEventKind.HUNG_UP, TurnKind.PLAY, "s/closing", 9500,
                    mid_prompt=True)
    with TruthLog(path, clock) as log:
        log.write("call-7", 7, turn(1))
        clock.advance(dt.timedelta(seconds=3))
        log.write("call-7", 7, delivered(2, "1980#"))
        log.write("call-7", 7, spoken)
        log.write("call-7", None, hung)
    got = read_truth(path)
    assert [e.seq for e in got] == [1, 2, 3, 4]
    assert got[0] == TruthEntry.of("call-7", 7, turn(1), T0)
    assert got[1].at == T0 + dt.timedelta(seconds=3)
    assert (got[1].keys, got[1].digits, got[1].end) == ("1980#", "1980", InputEnd.DIGITS)
    assert got[2] == TruthEntry.of("call-7", 7, spoken, T0 + dt.timedelta(seconds=3))
    assert got[3].hung_up and got[3].mid_prompt and got[3].attempt_id is None
    assert got[2].question == ("s", "comment") and got[3].question is None


def test_without_a_clock_at_is_none(tmp_path: Path) -> None:
    with TruthLog(tmp_path / "t.jsonl") as log:
        log.write("c", 1, turn(1))
    assert read_truth(tmp_path / "t.jsonl")[0].at is None


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    with TruthLog(path) as log:
        log.write("c", 1, turn(1))
        log.write("c", 1, delivered(2))
    whole = path.read_bytes()
    line = TruthEntry.of("c", 1, turn(3), None).to_json().encode()
    for cut in (1, len(line) // 2, len(line) - 1):
        path.write_bytes(whole + line[:cut])  # the process died inside the write
        assert [e.seq for e in read_truth(path)] == [1, 2]


def test_a_torn_multibyte_character_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    event = SimEvent(1, SimEventKind.DELIVERED, TurnKind.RECORD, "s/q.c", 0, said="护士")
    line = TruthEntry.of("c", 1, event, None).to_json().encode()
    path.write_bytes(line[: line.index("护".encode()) + 1])
    assert read_truth(path) == []


def test_reopening_after_a_torn_line_starts_a_new_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    line = TruthEntry.of("c", 1, turn(1), None).to_json()
    path.write_text(line[:10], encoding="utf-8")  # a killed writer's last words
    with TruthLog(path) as log:  # the restarted process appends to the same file
        log.write("d", 2, turn(1))
    got = read_truth(path)
    assert [(e.call, e.seq) for e in got] == [("d", 1)]


def test_whole_json_that_is_no_entry_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"call": "c"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"t\.jsonl:1"):
        read_truth(path)


def test_a_closed_log_refuses_to_write(tmp_path: Path) -> None:
    log = TruthLog(tmp_path / "t.jsonl")
    log.close()
    log.close()  # harmless
    with pytest.raises(ValueError, match="closed"):
        log.write("c", 1, turn(1))


def test_handled_replies_are_those_the_ivr_came_back_from(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    with TruthLog(path) as log:
        # call a: answered q.pain, was asked the next question, then the process died
        log.write("call-1", 1, turn(1))
        log.write("call-1", 1, delivered(2))
        log.write("call-1", 1, turn(3, "s/q.mood"))
        log.write("call-1", 1, delivered(4, "2", "s/q.mood"))
        # call b (interleaved, as concurrent calls are): answered and the line ended
        log.write("call-2", 2, turn(1))
        log.write("call-2", 2, delivered(2, "5#"))
        log.write("call-2", 2, SimEvent(3, SimEventKind.ENDED, None, "", 4000))
    handled = handled_replies(read_truth(path))
    assert [(e.call, e.prompt_key) for e in handled] == [("call-1", "s/q.pain"),
                                                         ("call-2", "s/q.pain")]
