"""An independent witness on AMI: the tier checks a recording's length and where each
keypad answer sits in it against what Asterisk itself says, not the engine's own times.

`AmiObserver` logs in as the tier's own read-only AMI user, in a thread, and keeps per
channel Uniqueid Asterisk's `Timestamp` (manager.conf has `timestampevents=yes`) of the
first `MixMonitorStart` and `Hangup` and of every key the patient pressed (`DTMFEnd`,
received). Nothing of the engine is used, so a bug in the engine's AMI parsing cannot hide
itself here.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

KEPT = frozenset({"mixmonitorstart", "hangup"})


@dataclass
class Seen:
    """Asterisk's timestamps (epoch seconds) of the kept events, by Uniqueid."""

    at: dict[tuple[str, str], float] = field(default_factory=dict)
    keys: dict[str, list[tuple[float, str]]] = field(default_factory=dict)  # (when, digit)

    def span_s(self, uniqueid: str, start: str, end: str) -> float | None:
        a, b = self.at.get((uniqueid, start)), self.at.get((uniqueid, end))
        return None if a is None or b is None else b - a


def read_frames(sock: socket.socket, stopped: Callable[[], bool]
                ) -> Iterator[dict[str, str]]:
    """AMI frames from `sock` as fields (names lower-cased, values stripped; the first of
    a repeated name wins) until `stopped()` or the connection closes. `sock` needs a short
    timeout: that is how often `stopped` is asked."""
    buf = b""
    while not stopped():
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            return
        buf += chunk
        while b"\r\n\r\n" in buf:
            raw, buf = buf.split(b"\r\n\r\n", 1)
            fields: dict[str, str] = {}
            for line in raw.decode(errors="replace").split("\r\n"):
                key, sep, value = line.partition(":")
                if sep:
                    fields.setdefault(key.strip().lower(), value.strip())
            yield fields


class AmiObserver:
    """`start()` before the calls, `stop()` after; read `seen`."""

    def __init__(self, port: int, user: str, secret: str) -> None:
        self._port = port
        self._login = (f"Action: Login\r\nUsername: {user}\r\nSecret: {secret}\r\n"
                       "Events: on\r\n\r\n").encode()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ami-observer", daemon=True)
        self._ready = threading.Event()
        self.seen = Seen()
        self.error: str | None = None

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise AssertionError(f"the AMI observer did not log in: {self.error}")

    def stop(self, linger_s: float = 1.0) -> None:
        time.sleep(linger_s)  # the last Hangup may trail the engine's own view by a moment
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self._port), timeout=5) as sock:
                sock.settimeout(0.2)
                sock.sendall(self._login)
                for fields in read_frames(sock, self._stop.is_set):
                    self._frame(fields)
        except OSError as exc:
            self.error = str(exc)
            self._ready.set()

    def _frame(self, fields: dict[str, str]) -> None:
        if fields.get("response") == "Success" and "event" not in fields:
            self._ready.set()
        elif fields.get("response") == "Error":
            self.error = fields.get("message", "login refused")
            self._ready.set()
        event = fields.get("event", "").lower()
        if "uniqueid" not in fields or "timestamp" not in fields:
            return
        at = float(fields["timestamp"])
        if event in KEPT:
            self.seen.at.setdefault((fields["uniqueid"], event), at)
        elif event == "dtmfend" and fields.get("direction") == "Received":
            self.seen.keys.setdefault(fields["uniqueid"], []).append((at, fields["digit"]))
