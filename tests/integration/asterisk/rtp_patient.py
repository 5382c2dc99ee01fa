"""The patient's media on 127.0.0.1: hears the prompts, presses keys as RFC 4733 events.

SIPp carries the patient's SIP; its SDP answer names this socket as the patient's audio, so
Asterisk sends the prompts here and takes the keys from here. The patient is reactive, like
a person: it presses its next keys once a prompt has been heard and the line has then been
quiet for `quiet_s` (Asterisk sends digital silence while GET DATA waits for digits; the
IVR's own pause between two prompts, a prompt's synthesis, is far shorter), so the test
does not depend on how long the synthesised prompts are.

From the answer on it sends PCMU every 20 ms, as a phone does (Asterisk's strict RTP learns
the source from a steady stream before it trusts events from it): the SIPp scenario writes
the port of Asterisk's audio into `remote_file` as it takes the INVITE. It first says hello
(`hello_ms` of sound; answering-machine detection hears a person's short word and the
silence after it), then sends silence while no key is pressed; with `talks_after_keys`,
once its keys are pressed it sends sound again (it talks to the agent or nurse the call
was handed to).
"""

from __future__ import annotations

import os
import random
import socket
import struct
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PCMU = 0
EVENT_PT = 101  # the telephone-event payload type both SDPs name
EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}
FRAME = 160  # samples in 20 ms at 8 kHz


@dataclass
class Heard:
    """What the patient observed (for assertions and failure messages)."""

    packets: int = 0  # audio packets received, digital silence included
    bursts: int = 0  # prompts heard: runs of sound separated by quiet
    pressed: list[tuple[float, str]] = field(default_factory=list)


# digital silence in G.711 (μ-law 0xFF/0x7F, A-law 0xD5/0x55): what Asterisk's silence
# generator sends while nothing plays (`transmit_silence = yes`, which keeps the call
# recording continuous); a person hears that as quiet, not as a prompt
_SILENT_BYTES = frozenset(b"\xff\x7f\xd5\x55")


_SILENCE = b"\xff" * FRAME
_VOICE = bytes([0xB0, 0x30]) * (FRAME // 2)  # a quiet buzz: sound, for whoever listens


def _sound(payload: bytes) -> bool:
    """True when an audio packet carries something to hear (not digital silence)."""
    loud = sum(1 for b in payload if b not in _SILENT_BYTES)
    return loud > len(payload) // 10


class RtpPatient:
    """`start()`, give `port` to the SIP peer's SDP, `stop()` at the end."""

    def __init__(self, keys: list[str], quiet_s: float = 2.0, tone_ms: int = 120,
                 gap_ms: int = 120, talks_after_keys: bool = False,
                 hello_ms: int = 600) -> None:
        self._keys = list(keys)
        self._talks = talks_after_keys  # once every key is pressed: speaks to whoever answers
        self._quiet_s = quiet_s
        self._tone_frames = max(3, tone_ms // 20)
        self._gap_s = gap_ms / 1000
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.005)  # the send loop's tick: frames stay on their clock
        self._remote: tuple[str, int] | None = None
        handle, name = tempfile.mkstemp(prefix="rtp-remote-")
        os.close(handle)
        self.remote_file = Path(name)  # the SIPp scenario writes Asterisk's audio port here
        self.remote_file.unlink()
        self._hello_frames = hello_ms // 20
        self._seq = random.randrange(1 << 16)
        self._ts = random.randrange(1 << 32)
        self._ssrc = random.randrange(1 << 32)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rtp-patient", daemon=True)
        self._last_audio = 0.0
        self._heard_since_keys = False
        self.heard = Heard()
        self.started_at = 0.0

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    @property
    def keys_left(self) -> list[str]:
        return list(self._keys)

    def start(self) -> None:
        self.started_at = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()
        self.remote_file.unlink(missing_ok=True)

    # -- the loop -------------------------------------------------------------------------

    def _run(self) -> None:
        next_frame = time.monotonic()
        while not self._stop.is_set():
            self._receive()
            if self._remote is None:
                self._remote = self._told_remote()
            now = time.monotonic()
            if now - next_frame > 0.5:
                next_frame = now  # stalled (a loaded machine): carry on from here
            # a phone sends 50 frames a second on its own clock, never fewer because a
            # loop iteration ran late: every frame due by now goes out
            while self._remote is not None and now >= next_frame:
                talking = self._hello_frames > 0 or (self._talks and not self._keys)
                self._hello_frames = max(0, self._hello_frames - 1)
                self._send(PCMU, _VOICE if talking else _SILENCE, marker=False)
                self._ts = (self._ts + FRAME) & 0xFFFFFFFF
                next_frame += 0.02
            if self._keys and self._heard_since_keys and self._last_audio \
                    and now - self._last_audio >= self._quiet_s:
                keys = self._keys.pop(0)
                self.heard.pressed.append((round(now - self.started_at, 2), keys))
                for key in keys:
                    self._press(key)
                self._heard_since_keys = False
                next_frame = time.monotonic()

    def _told_remote(self) -> tuple[str, int] | None:
        """Asterisk's audio port, once the SIPp scenario has written it."""
        try:
            text = self.remote_file.read_text().strip()
        except OSError:
            return None
        return ("127.0.0.1", int(text)) if text.isdigit() else None

    def _receive(self) -> None:
        try:
            data, addr = self._sock.recvfrom(2048)
        except (TimeoutError, BlockingIOError):
            return
        except OSError:
            return
        if len(data) < 12 or data[0] >> 6 != 2:
            return
        self._remote = addr  # symmetric RTP: answer where Asterisk sends from
        now = time.monotonic()
        if data[1] & 0x7F == EVENT_PT:
            return
        self.heard.packets += 1  # the line carries audio (silence included)
        if _sound(data[12:]):
            if not self._last_audio or now - self._last_audio >= self._quiet_s:
                self.heard.bursts += 1
            self._last_audio = now
            self._heard_since_keys = True

    def _send(self, pt: int, payload: bytes, marker: bool) -> None:
        assert self._remote is not None
        header = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, self._seq,
                             self._ts, self._ssrc)
        self._seq = (self._seq + 1) & 0xFFFF
        self._sock.sendto(header + payload, self._remote)

    def _press(self, key: str) -> None:
        """One key as RFC 4733: events every 20 ms with a growing duration, three ends."""
        event = EVENTS[key]
        for i in range(1, self._tone_frames + 1):
            self._send(EVENT_PT, struct.pack("!BBH", event, 10, i * FRAME), marker=i == 1)
            time.sleep(0.02)
        duration = self._tone_frames * FRAME
        for _ in range(3):
            self._send(EVENT_PT, struct.pack("!BBH", event, 0x80 | 10, duration),
                       marker=False)
        self._ts = (self._ts + duration) & 0xFFFFFFFF
        time.sleep(self._gap_s)
        self._ts = (self._ts + int(self._gap_s * 8000)) & 0xFFFFFFFF
