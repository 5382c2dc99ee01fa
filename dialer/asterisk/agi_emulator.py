"""`AgiEmulator`: Asterisk's side of FastAGI for a scripted patient (tests, benchmarks).

Where `testing.AgiReplayer` replays one recorded session, the emulator answers whatever
`AgiChannel` sends for a patient described by `ivr.testing` actions (Press, Silence, Speak,
BargeIn, HangUp), in the response formats recorded from Asterisk 22: so `AgiChannel` can
run the shared Channel contract suite and real question scripts without an Asterisk.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import wave
from pathlib import Path

from core.clock import FakeClock
from dialer.asterisk.agi_channel import AgiChannel
from dialer.asterisk.agi_connection import AgiConnection
from dialer.asterisk.agi_stream import AgiStream
from dialer.asterisk.testing import DEAD_LINE, DEAD_OK_VERBS, verb_of
from ivr.testing import Action, BargeIn, HangUp, Press, Speak


class AgiEmulator:
    """Plays Asterisk's side of the AGI commands `AgiChannel` sends, for a patient who
    does `actions` (`ivr.testing`: Press, Silence, Speak, BargeIn, HangUp) in order.

    Responses use the exact formats recorded from Asterisk 22 (see the module doc of
    `dialer.asterisk.agi`), the bare HANGUP notice included. Playback and recording advance
    `clock` by their length, so clip offsets within the call come out as on a real call.
    Used as the writer of an `AgiConnection`: every command line written is answered at once
    into `reader`.
    """

    def __init__(self, actions: list[Action], clock: FakeClock, reader: AgiStream,
                 accept_transfer: bool = True) -> None:
        self._actions = list(actions)
        self._keys = ""  # typed keys not consumed yet
        self._clock = clock
        self._reader = reader
        self._accept = accept_transfer
        self._dead = False
        self._closed = False
        self.commands: list[str] = []
        self.variables: dict[str, str] = {}

    # -- the AgiWriter protocol -----------------------------------------------------------

    def write(self, data: bytes) -> None:
        for raw in data.decode("utf-8").splitlines():
            self.commands.append(raw)
            self._reader.feed_data(("\n".join(self._answer(raw)) + "\n").encode())

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._reader.feed_eof()

    def is_closing(self) -> bool:
        return self._closed

    # -- Asterisk's behaviour -------------------------------------------------------------

    def _next(self) -> Action | None:
        return self._actions.pop(0) if self._actions else None

    def _advance(self, ms: int) -> None:
        self._clock.advance(dt.timedelta(milliseconds=ms))

    def _hangup(self, line: str) -> tuple[str, ...]:
        self._dead = True
        return ("HANGUP", line)

    def _answer(self, line: str) -> tuple[str, ...]:
        verb = verb_of(line)
        args = _split_args(line[len(verb):])
        if self._dead and verb not in DEAD_OK_VERBS:
            return (DEAD_LINE,)
        if verb == "STREAM FILE":
            return self._stream(args)
        if verb == "GET DATA":
            return self._get_data(args)
        if verb == "WAIT FOR DIGIT":
            return self._wait_for_digit()
        if verb == "RECORD FILE":
            return self._record(args)
        if verb == "SET VARIABLE":
            self.variables[args[0]] = args[1] if len(args) > 1 else ""
            return ("200 result=1",)
        if verb == "GET FULL VARIABLE":
            if "QUEUE_MEMBER(" in line:
                return (f"200 result=1 ({1 if self._accept else 0})",)
            return ("200 result=0",)
        if verb == "GET VARIABLE":
            value = self.variables.get(args[0] if args else "")
            return ("200 result=0",) if value is None else (f"200 result=1 ({value})",)
        if verb == "HANGUP":
            self._dead = True
            return ("200 result=1",)
        if verb == "CHANNEL STATUS":
            return ("200 result=6",)  # Up (a dead channel got 511 above)
        if verb == "ANSWER":
            return ("200 result=0",)
        if verb == "EXEC" and args and args[0] == "WaitForSilence":
            timeout_s = int((args[1] if len(args) > 1 else "0,1,1").split(",")[-1] or 1)
            self._advance(timeout_s * 1000 // 2)  # a greeting, a beep, then silence
            return ("200 result=0",)
        return ("510 Invalid or unknown command",)

    def _prompt_ms(self, stem: str) -> int:
        path = Path(stem + ".wav")
        if path.exists():
            with contextlib.suppress(OSError, EOFError, wave.Error), wave.open(str(path)) as w:
                return int(w.getnframes() * 1000 // max(1, w.getframerate()))
        return 1000

    def _stream(self, args: list[str]) -> tuple[str, ...]:
        length = self._prompt_ms(args[0] if args else "")
        escape = args[1] if len(args) > 1 else ""
        action = self._actions[0] if self._actions else None
        if isinstance(action, HangUp):
            self._next()
            self._advance(length // 2)
            self._dead = True
            return (f"200 result=-1 endpos={length * 4}",)
        if isinstance(action, BargeIn) and action.key in escape:
            self._next()
            self._advance(length // 3)
            return (f"200 result={ord(action.key)} endpos={length * 8 // 3}",)
        self._advance(length)
        return (f"200 result=0 endpos={length * 8}",)

    def _take_typed(self) -> str | None:
        """Keys the patient types next (None: silence; raises nothing at the end)."""
        if self._keys:
            keys, self._keys = self._keys, ""
            return keys
        action = self._next()
        if isinstance(action, Press):
            return action.keys
        if isinstance(action, BargeIn):
            return action.key
        if isinstance(action, HangUp):
            self._actions.insert(0, action)
        return None

    def _get_data(self, args: list[str]) -> tuple[str, ...]:
        self._advance(self._prompt_ms(args[0] if args else ""))
        wanted = args[2] if len(args) > 2 else ""
        max_digits = int(wanted) if wanted.isascii() and wanted.isdigit() else 1024
        if self._actions and isinstance(self._actions[0], HangUp) and not self._keys:
            self._next()
            return self._hangup("200 result=-1")
        keys = self._take_typed()
        if keys is None:
            return ("200 result= (timeout)",)
        got = ""
        for i, key in enumerate(keys):
            if key == "#":
                self._keys = keys[i + 1:]
                return (f"200 result={got}",)
            got += key
            if len(got) >= max_digits:
                self._keys = keys[i + 1:]
                return (f"200 result={got}",)
        return (f"200 result={got} (timeout)",)

    def _wait_for_digit(self) -> tuple[str, ...]:
        if self._actions and isinstance(self._actions[0], HangUp) and not self._keys:
            self._next()
            return self._hangup("200 result=-1")
        keys = self._take_typed()
        if not keys:
            return ("200 result=0",)
        self._keys = keys[1:]
        self._advance(300)
        return (f"200 result={ord(keys[0])}",)

    def _record(self, args: list[str]) -> tuple[str, ...]:
        stem = args[0] if args else "clip"
        stop = args[2] if len(args) > 2 else "#"
        action = self._next()
        if isinstance(action, HangUp):
            return self._hangup("200 result=-1 (hangup) endpos=0")
        if isinstance(action, Press | BargeIn):
            key = action.keys[0] if isinstance(action, Press) else action.key
            if key in stop:
                return (f"200 result={ord(key)} (dtmf) endpos=0",)
        if isinstance(action, Speak):
            ms = 400 + 60 * len(action.text)
            if action.wav is not None and action.wav.exists():
                with wave.open(str(action.wav)) as src:
                    frames = src.readframes(src.getnframes())
                    ms = src.getnframes() * 1000 // max(1, src.getframerate())
            else:
                frames = b"\x00\x10" * (ms * 8)
            with wave.open(stem + ".wav", "wb") as out:
                out.setnchannels(1)
                out.setsampwidth(2)
                out.setframerate(8000)
                out.writeframes(frames)
            self._advance(ms)
            return (f"200 result=0 (timeout) endpos={ms * 8}",)
        return ("200 result=0 (timeout) endpos=0",)  # silence only: trimmed away


def _split_args(rest: str) -> list[str]:
    """Asterisk's argument parsing: blanks split, double quotes group, backslash escapes."""
    out: list[str] = []
    cur: list[str] = []
    quoted = escaped = had = False
    for ch in rest:
        if escaped:
            cur.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted, had = not quoted, True
        elif ch == " " and not quoted:
            if cur or had:
                out.append("".join(cur))
            cur, had = [], False
        else:
            cur.append(ch)
    if cur or had:
        out.append("".join(cur))
    return out


def emulated_agi_channel(actions: list[Action], work_dir: Path, accept_transfer: bool = True,
                         clock: FakeClock | None = None) -> tuple[AgiChannel, AgiEmulator]:
    """An `AgiChannel` whose Asterisk is an `AgiEmulator` (call inside a running loop)."""
    clock = clock or FakeClock(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    reader = AgiStream()
    emulator = AgiEmulator(actions, clock, reader, accept_transfer)
    channel = AgiChannel(AgiConnection(reader, emulator), clock, work_dir, clip_prefix="clip")
    return channel, emulator
