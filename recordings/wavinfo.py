"""Read duration and codec from WAV bytes without trusting the file name."""

from __future__ import annotations

import io
import struct
import wave
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class AudioInfo:
    duration_ms: int
    codec: str  # e.g. "pcm_s16le/8000/1"


def probe_wav(data: bytes) -> AudioInfo:
    """Duration and codec of a RIFF/WAV file; unknown formats give duration 0, codec 'unknown'."""
    try:
        with wave.open(io.BytesIO(data)) as w:
            rate = w.getframerate()
            frames = w.getnframes()
            codec = f"pcm_s{8 * w.getsampwidth()}le/{rate}/{w.getnchannels()}"
            return AudioInfo(duration_ms=int(frames * 1000 / rate) if rate else 0, codec=codec)
    except (wave.Error, EOFError):
        return AudioInfo(duration_ms=0, codec="unknown")


def wav_header_complete(path: Path) -> bool:
    """Does the RIFF header of the WAV at `path` describe the whole file? A writer that
    has not closed the file yet (MixMonitor still recording) leaves the sizes at 0 or short;
    only a closed file has RIFF size = file size - 8 and its `data` chunk reaching the end."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
            size = fh.seek(0, 2)
    except OSError:
        return False
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return False
    if struct.unpack_from("<I", head, 4)[0] != size - 8:
        return False
    pos = 12
    while pos + 8 <= len(head):
        chunk, length = head[pos:pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
        if chunk == b"data":
            return bool(pos + 8 + length == size)
        pos += 8 + length + (length & 1)
    return False
