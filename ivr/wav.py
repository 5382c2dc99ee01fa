"""Telephony WAV helpers: 8 kHz mono 16-bit PCM, the format Asterisk's `wav` player reads.

Pure Python (the `wave` and `array` modules; `audioop` is deprecated), small and blocking:
call them from a worker thread when on the event loop.
"""

from __future__ import annotations

import array
import math
import os
import sys
import wave
from pathlib import Path

RATE = 8000
WIDTH = 2  # bytes per sample


def write_wav(path: Path, pcm: bytes, rate: int = RATE) -> None:
    """Write mono 16-bit `pcm` atomically (a temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with wave.open(str(tmp), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(WIDTH)
        out.setframerate(rate)
        out.writeframes(pcm)
    os.replace(tmp, path)


def read_wav(path: Path) -> tuple[bytes, int]:
    """Mono 16-bit PCM and its sample rate. Raises ValueError on another format."""
    with wave.open(str(path), "rb") as src:
        if src.getnchannels() != 1 or src.getsampwidth() != WIDTH:
            raise ValueError(f"{path}: not mono 16-bit PCM")
        return src.readframes(src.getnframes()), src.getframerate()


def duration_ms(pcm: bytes, rate: int = RATE) -> int:
    return len(pcm) // WIDTH * 1000 // rate


def silence(ms: int, rate: int = RATE) -> bytes:
    return b"\x00\x00" * (rate * ms // 1000)


_DTMF = {"1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "4": (770, 1209),
         "5": (770, 1336), "6": (770, 1477), "7": (852, 1209), "8": (852, 1336),
         "9": (852, 1477), "*": (941, 1209), "0": (941, 1336), "#": (941, 1477)}


def dtmf(key: str, ms: int = 100, rate: int = RATE) -> bytes:
    """The two-tone sound of one keypad key (so a recording shows the keypress)."""
    low, high = _DTMF[key]
    n = rate * ms // 1000
    samples = array.array("h", (
        int(6000 * (math.sin(2 * math.pi * low * i / rate)
                    + math.sin(2 * math.pi * high * i / rate))) for i in range(n)))
    return _le_bytes(samples)


def upsample_2x(pcm: bytes) -> bytes:
    """8 -> 16 kHz by linear interpolation (speech band is far below 4 kHz)."""
    src = array.array("h")
    src.frombytes(pcm)
    if sys.byteorder != "little":
        src.byteswap()
    n = len(src)
    if n == 0:
        return b""
    out = array.array("h", bytes(4 * n))
    out[0::2] = src
    nxt = src[1:]
    nxt.append(src[-1])
    out[1::2] = array.array("h", ((a + b) >> 1 for a, b in zip(src, nxt, strict=True)))
    return _le_bytes(out)


def _le_bytes(samples: array.array[int]) -> bytes:
    if sys.byteorder != "little":
        samples = array.array("h", samples)
        samples.byteswap()
    return samples.tobytes()
