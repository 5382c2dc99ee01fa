"""The `Channel` seam: everything the interpreter may do to a call.

Implemented by the FastAGI session (`dialer/asterisk/`), by the sim channel
(`ivr/sim_channel.py`) and by the scripted test channel (`ivr/testing.py`). The interpreter
knows nothing else about telephony.

A hangup is not an exception that escapes: every method returns normally once the far end
has gone, with `hung_up` true and an empty result; the interpreter checks `hung_up`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Prompt:
    """Rendered audio to play: an 8 kHz mono 16-bit WAV and the text it says."""

    audio: Path
    text: str
    key: str = ""  # stable id of the prompt (script/question/part), for logs and packs


class InputEnd(enum.StrEnum):
    """Why a keypad or recording input ended."""

    DIGITS = "digits"  # max digits reached or terminator pressed
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"  # a stop/escape digit
    HANGUP = "hangup"


@dataclass(frozen=True, slots=True)
class PlayResult:
    digit: str | None  # the escape digit that interrupted playback (barge-in), if any
    hung_up: bool = False


@dataclass(frozen=True, slots=True)
class DigitsResult:
    digits: str  # without the terminator
    end: InputEnd
    offset_ms: int | None = None  # when the input ended, from the start of the call


@dataclass(frozen=True, slots=True)
class RecordResult:
    """A recorded answer clip (8 kHz mono 16-bit WAV) and where it sits in the call."""

    audio: Path | None
    duration_ms: int
    offset_ms: int  # start of the clip, from the start of the call (recording)
    end: InputEnd
    digit: str | None = None


@runtime_checkable
class Channel(Protocol):
    """One answered call, as the IVR interpreter drives it."""

    @property
    def hung_up(self) -> bool:
        """True once the far end has gone; no further prompt will be heard."""
        ...

    async def play(self, prompt: Prompt, interrupt_digits: str = "") -> PlayResult:
        """Play `prompt`; a digit in `interrupt_digits` stops it early (barge-in)."""
        ...

    async def collect_digits(self, prompt: Prompt | None, max_digits: int, timeout_s: float,
                             terminator: str = "#") -> DigitsResult:
        """Play `prompt` (interruptible by any key) then collect up to `max_digits` keys.

        Input ends on `max_digits`, on `terminator` (not included), on `timeout_s` of silence
        after the prompt, or on hangup.
        """
        ...

    async def record(self, prompt: Prompt | None, max_seconds: float, silence_seconds: float,
                     stop_digits: str = "#") -> RecordResult:
        """Play `prompt` then record the caller until silence, a stop digit or the limit."""
        ...

    async def transfer(self, target: str, variables: dict[str, str]) -> bool:
        """Hand the call to `target` (a queue name) with channel variables; True if accepted."""
        ...

    async def wait_for_silence(self, silence_s: float, timeout_s: float) -> bool:
        """Wait until the far end has said nothing for `silence_s` (an answering machine's
        greeting and beep are over), at most `timeout_s`; False if it hung up."""
        ...

    async def hangup(self) -> None:
        """End the call from our side."""
        ...
