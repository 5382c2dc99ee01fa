"""The truth log: what the simulated patients really did, to check the store against.

`TruthLog` is the `ivr.sim_channel.SimEventLog` the sim backend hands to each
`SimChannel(truth=..., attempt_id=...)`. It appends one JSON line per event to a file, in
one `os.write` on an `O_APPEND` descriptor, before the channel goes on: once a line is
written it is in the kernel's page cache and survives a SIGKILL of the process (not a
power cut: there is no fsync). A process killed mid-write can leave at most one torn
line; `read_truth` skips it. Several processes may append to one file (each line is one
write on Linux), but one file per process is simpler to reason about.

**Which replies must be stored.** The channel writes a `DELIVERED` entry just before it
returns a reply (keys, speech, a barge-in, a timeout) to the IVR, and the IVR calls the
channel one operation at a time. So a `DELIVERED` entry followed by any later entry of
the same call (the next prompt's `TURN`, a `HUNG_UP`, an `ENDED`) was fully handled: the
IVR had done whatever it does with that reply (saved the answer it makes) before it came
back to the line. `handled_replies` returns exactly those. The last `DELIVERED` entry of a
call killed right after it may or may not have been saved; a test must not count it
either way. Which handled replies become stored answers is the IVR's business: a reply to
a question prompt (`<script>/q.<question>`, see `TruthEntry.question`) that the script
accepts is an answer; invalid keys are asked again, `0` and `9` are requests; the answer
after the last try is stored even when empty.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from core.clock import Clock
from ivr.channel import InputEnd
from ivr.sim_channel import SimEvent, SimEventKind, TurnKind

__all__ = ["TruthEntry", "TruthLog", "handled_replies", "read_truth"]


@dataclass(frozen=True, slots=True)
class TruthEntry:
    """One line of the truth log: a `SimEvent` of one call, stamped with the clock.

    `call` is the sim channel's call name, `attempt_id` the attempt it belongs to, `seq`
    the order within the call (1, 2, ...), `offset_ms` the time into the call on the
    channel's timeline, `at` the clock's time when the line was written (None without a
    clock). `keys` are the keys pressed as typed (terminator included); `digits` and `end`
    what the IVR received; `said` the words spoken; `clip` the answer clip handed over,
    from `clip_offset_ms` for `clip_ms`; `mid_prompt` a hangup or barge-in that cut the
    prompt short.
    """

    call: str
    attempt_id: int | None
    seq: int
    event: SimEventKind
    turn: TurnKind | None
    prompt_key: str
    offset_ms: int
    at: dt.datetime | None = None
    keys: str = ""
    digits: str = ""
    end: InputEnd | None = None
    said: str | None = None
    clip: Path | None = None
    clip_offset_ms: int | None = None
    clip_ms: int = 0
    mid_prompt: bool = False

    @property
    def hung_up(self) -> bool:
        return self.event is SimEventKind.HUNG_UP

    @property
    def question(self) -> tuple[str, str] | None:
        """(script id, question id) when the prompt asks a question, else None."""
        script_id, _, part = self.prompt_key.partition("/")
        if not part.startswith("q."):
            return None
        return script_id, part[2:]

    @classmethod
    def of(cls, call: str, attempt_id: int | None, event: SimEvent,
           at: dt.datetime | None) -> TruthEntry:
        return cls(call=call, attempt_id=attempt_id, seq=event.seq, event=event.kind,
                   turn=event.turn, prompt_key=event.prompt_key, offset_ms=event.offset_ms,
                   at=at, keys=event.keys, digits=event.digits, end=event.end,
                   said=event.said, clip=event.clip, clip_offset_ms=event.clip_offset_ms,
                   clip_ms=event.clip_ms, mid_prompt=event.mid_prompt)

    def to_json(self) -> str:
        """One line of JSON (no newline)."""
        record: dict[str, Any] = {
            "call": self.call, "attempt_id": self.attempt_id, "seq": self.seq,
            "event": self.event.value, "turn": self.turn.value if self.turn else None,
            "prompt_key": self.prompt_key, "offset_ms": self.offset_ms,
            "at": self.at.isoformat() if self.at else None, "keys": self.keys,
            "digits": self.digits, "end": self.end.value if self.end else None,
            "said": self.said, "clip": str(self.clip) if self.clip else None,
            "clip_offset_ms": self.clip_offset_ms, "clip_ms": self.clip_ms,
            "mid_prompt": self.mid_prompt,
        }
        return json.dumps(record, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> TruthEntry:
        """Parse one line. Raises ValueError (json.JSONDecodeError is one) when it is not
        a whole entry."""
        raw = json.loads(line)
        if not isinstance(raw, dict):
            raise ValueError("a truth log line is a JSON object")
        try:
            at, turn, end, clip = raw["at"], raw["turn"], raw["end"], raw["clip"]
            return cls(call=str(raw["call"]),
                       attempt_id=None if raw["attempt_id"] is None else int(raw["attempt_id"]),
                       seq=int(raw["seq"]), event=SimEventKind(raw["event"]),
                       turn=TurnKind(turn) if turn else None,
                       prompt_key=str(raw["prompt_key"]), offset_ms=int(raw["offset_ms"]),
                       at=dt.datetime.fromisoformat(at) if at else None,
                       keys=str(raw["keys"]), digits=str(raw["digits"]),
                       end=InputEnd(end) if end else None,
                       said=None if raw["said"] is None else str(raw["said"]),
                       clip=Path(clip) if clip else None,
                       clip_offset_ms=(None if raw["clip_offset_ms"] is None
                                       else int(raw["clip_offset_ms"])),
                       clip_ms=int(raw["clip_ms"]), mid_prompt=bool(raw["mid_prompt"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a truth log entry: {exc}") from exc


class TruthLog:
    """An append-only JSONL file of `TruthEntry` lines, one `os.write` per line.

    `clock` stamps each line's `at` (the campaign's clock, so entries line up with the
    store's times). Opening a file whose last line is torn ends that line first, so the
    next entry starts on a line of its own.
    """

    def __init__(self, path: Path, clock: Clock | None = None) -> None:
        self.path = path
        self._clock = clock
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if _ends_torn(path):
            self._write_all(b"\n")

    def write(self, call: str, attempt_id: int | None, event: SimEvent) -> None:
        """Append `event` as one line. Raises OSError if it cannot be written (a truth log
        that skipped a line would make the check it serves lie), ValueError once closed."""
        at = self._clock.now() if self._clock is not None else None
        self.append(TruthEntry.of(call, attempt_id, event, at))

    def append(self, entry: TruthEntry) -> None:
        """Append a ready entry as one line (see `write`)."""
        # A few dozen bytes into the page cache: cheaper than a hop to a worker thread,
        # and writing inline keeps the file in the order things happened on the loop.
        self._write_all((entry.to_json() + "\n").encode())

    def _write_all(self, data: bytes) -> None:
        if self._fd is None:
            raise ValueError(f"truth log {self.path} is closed")
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> TruthLog:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _ends_torn(path: Path) -> bool:
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return False
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


def read_truth(path: Path) -> list[TruthEntry]:
    """Every whole entry of the log at `path`, in file order.

    A line that is not complete JSON can only be a torn write (a process killed, or a disk
    that filled, in the middle of it): it is skipped, whether it is the last line or one a
    later writer ended (see `TruthLog`). A line of whole JSON that is not an entry raises
    ValueError: that is a bug, not a crash.
    """
    entries: list[TruthEntry] = []
    for number, line in enumerate(path.read_bytes().split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            text = line.decode()
            json.loads(text)
        except ValueError:  # UnicodeDecodeError and JSONDecodeError: a torn line
            continue
        try:
            entries.append(TruthEntry.from_json(text))
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: {exc}") from exc
    return entries


def handled_replies(entries: Iterable[TruthEntry]) -> list[TruthEntry]:
    """The `DELIVERED` entries the IVR had finished with: those followed by any later entry
    of the same call (see the module doc). In the order given."""
    last_seq: dict[tuple[str, int | None], int] = {}
    delivered: list[TruthEntry] = []
    for entry in entries:
        key = (entry.call, entry.attempt_id)
        last_seq[key] = max(last_seq.get(key, 0), entry.seq)
        if entry.event is SimEventKind.DELIVERED:
            delivered.append(entry)
    return [e for e in delivered if last_seq[(e.call, e.attempt_id)] > e.seq]
