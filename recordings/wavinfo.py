"""Read duration and codec from WAV bytes without trusting the file name."""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass


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
