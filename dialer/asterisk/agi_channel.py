"""`AgiChannel`: the `ivr.Channel` seam over one FastAGI session.

Maps each Channel method onto AGI commands, every argument quoted (`agi.quote`):

- `play`            STREAM FILE "<audio without .wav>" "<interrupt digits>"
- `collect_digits`  GET DATA "<prompt>" "<timeout ms>" "<max>" (the `#` terminator is
                    Asterisk's own); with no prompt, or another terminator: WAIT FOR DIGIT
- `record`          RECORD FILE "<path>" "wav" "<stop digits>" "<max ms>" "0" "s=<silence>"
- `transfer`        SET VARIABLE FOLLOWUP_TRANSFER <queue> (+ the given variables), then the
                    AGI ends and the dialplan queues the call (`asterisk-conf/extensions.conf`)
- `hangup`          HANGUP

Once Asterisk reports the far end gone (bare `HANGUP` line, `result=-1`, `511`), `hung_up`
is true and every later method returns an empty result without sending another prompt.
A `result=-1` is checked with CHANNEL STATUS first: Asterisk 22 also answers -1 on a live
call when a prompt file is missing, and that must not end the call as a hangup (the
failure is logged and the method returns an empty, not-hung-up result).
"""

from __future__ import annotations

import functools
import itertools
import logging
import re
from pathlib import Path

from core.clock import Clock
from dialer.asterisk.agi import AgiResult, AgiResultCode, check_variable_name, command
from dialer.asterisk.agi_connection import AgiConnection
from ivr.channel import DigitsResult, InputEnd, PlayResult, Prompt, RecordResult

log = logging.getLogger(__name__)

TRANSFER_VARIABLE = "FOLLOWUP_TRANSFER"
SAMPLE_RATE = 8000  # RECORD FILE wav is 8 kHz: endpos / 8 = milliseconds
ALL_DIGITS = "0123456789*#"
_QUEUE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_PLAYED = PlayResult(digit=None, hung_up=False)


@functools.lru_cache(maxsize=4096)
def audio_stem(path: Path) -> str:
    """Asterisk wants a sound file name without its extension. (Cached: a script's
    prompts are played on call after call.)"""
    text = str(path)
    return text[:-4] if text[-4:].lower() == ".wav" else text


def _digit(result: AgiResult) -> str | None:
    """The key a result names by ASCII code (STREAM FILE, WAIT FOR DIGIT, RECORD FILE)."""
    if result.result is None or result.result <= 0:
        return None
    try:
        key = chr(result.result)
    except (ValueError, OverflowError):
        return None
    return key if key in ALL_DIGITS else None


class AgiChannel:
    """One answered call as the IVR interpreter drives it, over FastAGI.

    `record_dir` is where Asterisk writes answer clips (a path Asterisk can write to);
    `clip_prefix` names them. `clock` gives where each clip and each keypad input sits in
    the call recording, which had run `recording_lead_ms` when the session began.
    """

    def __init__(self, conn: AgiConnection, clock: Clock, record_dir: Path,
                 clip_prefix: str = "answer", recording_lead_ms: int = 0) -> None:
        self._conn = conn
        self._clock = clock
        self._started = clock.now()
        self._lead_ms = recording_lead_ms
        self._record_dir = record_dir
        self._clip_prefix = clip_prefix
        self._clip_numbers = itertools.count(1)
        self._released = False  # transferred: the dialplan owns the call now
        self.transferred_to: str | None = None

    # -- the Channel protocol ------------------------------------------------------------

    @property
    def hung_up(self) -> bool:
        return self._conn.hung_up

    @property
    def active(self) -> bool:
        """May we still send channel commands? (not hung up, not handed to the dialplan)"""
        return not (self._conn.hung_up or self._conn.closed or self._released)

    def _suspect(self, res: AgiResult) -> bool:
        """Anything but a plain success is worth a closer look (cheap, no await)."""
        return (res.code is not AgiResultCode.SUCCESS or res.result == -1
                or self._conn.hung_up or self._conn.closed)

    async def _gone(self, res: AgiResult, what: str) -> bool:
        """Did the far end leave during the command that got `res`?"""
        if self._conn.hung_up or self._conn.closed:
            return True
        if res.ok and res.result == -1:
            if not await self._conn.confirm_alive():
                return True
            log.error("AGI %s failed on a live call (missing or unreadable file?)", what)
        elif not res.ok:
            log.error("AGI %s refused: %s %s", what, int(res.code), res.message)
        return False

    async def play(self, prompt: Prompt, interrupt_digits: str = "") -> PlayResult:
        if not self.active:
            return PlayResult(digit=None, hung_up=self.hung_up)
        res = await self._conn.send(
            command("STREAM FILE", audio_stem(prompt.audio), interrupt_digits))
        if self._suspect(res) and await self._gone(
                res, f"STREAM FILE {prompt.key or prompt.audio}"):
            return PlayResult(digit=None, hung_up=True)
        if not res.ok or res.result == -1 or res.result == 0:
            return _PLAYED  # played to its end (or not at all, logged above): no key
        return PlayResult(digit=_digit(res), hung_up=False)

    def _offset_ms(self) -> int:
        """Now, in milliseconds from the start of the call recording."""
        return self._lead_ms + int((self._clock.now() - self._started).total_seconds() * 1000)

    async def collect_digits(self, prompt: Prompt | None, max_digits: int, timeout_s: float,
                             terminator: str = "#") -> DigitsResult:
        if not self.active:
            return DigitsResult("", InputEnd.HANGUP)
        timeout_ms = str(max(1, int(timeout_s * 1000)))
        if prompt is None or terminator != "#":
            got = await self._collect_keys(prompt, max_digits, timeout_ms, terminator)
            if not got.digits:
                return got
            return DigitsResult(got.digits, got.end, offset_ms=self._offset_ms())
        res = await self._conn.send(
            command("GET DATA", audio_stem(prompt.audio), timeout_ms, str(max_digits)))
        if self._suspect(res) and await self._gone(res, f"GET DATA {prompt.key or prompt.audio}"):
            return DigitsResult("", InputEnd.HANGUP)
        if not res.ok or res.result == -1:
            return DigitsResult("", InputEnd.TIMEOUT)  # the question was not heard
        digits = res.raw_result
        end = InputEnd.TIMEOUT if res.data == "timeout" and len(digits) < max_digits \
            else InputEnd.DIGITS
        return DigitsResult(digits, end, offset_ms=self._offset_ms() if digits else None)

    async def _collect_keys(self, prompt: Prompt | None, max_digits: int, timeout_ms: str,
                            terminator: str) -> DigitsResult:
        """Keys one by one (WAIT FOR DIGIT), after a prompt any key interrupts."""
        digits = ""
        if prompt is not None:
            played = await self.play(prompt, ALL_DIGITS)
            if played.hung_up:
                return DigitsResult("", InputEnd.HANGUP)
            if played.digit is not None:
                if played.digit == terminator:
                    return DigitsResult("", InputEnd.DIGITS)
                digits = played.digit
        while len(digits) < max_digits:
            res = await self._conn.send(command("WAIT FOR DIGIT", timeout_ms))
            if self._suspect(res) and await self._gone(res, "WAIT FOR DIGIT"):
                return DigitsResult(digits, InputEnd.HANGUP)
            key = _digit(res) if res.ok else None
            if key is None:
                return DigitsResult(digits, InputEnd.TIMEOUT)
            if terminator and key == terminator:
                return DigitsResult(digits, InputEnd.DIGITS)
            digits += key
        return DigitsResult(digits, InputEnd.DIGITS)

    async def record(self, prompt: Prompt | None, max_seconds: float, silence_seconds: float,
                     stop_digits: str = "#") -> RecordResult:
        empty = RecordResult(audio=None, duration_ms=0, offset_ms=0, end=InputEnd.HANGUP)
        if not self.active:
            return empty
        if prompt is not None:
            played = await self.play(prompt)
            if played.hung_up:
                return empty
        stem = f"{self._record_dir}/{self._clip_prefix}-{next(self._clip_numbers)}"
        offset_ms = self._offset_ms()
        args = [stem, "wav", stop_digits, str(max(1, int(max_seconds * 1000))), "0"]
        if silence_seconds > 0:
            args.append(f"s={max(1, round(silence_seconds))}")
        res = await self._conn.send(command("RECORD FILE", *args))
        duration_ms = max(0, (res.endpos or 0) * 1000 // SAMPLE_RATE)
        # the stem plus ".wav" (not with_suffix: "1795652831.0" has a dot); nothing recorded
        # (silence trimmed, or a stop key at once) is no clip at all
        audio = Path(f"{stem}.wav") if duration_ms > 0 else None
        if res.ok and res.data == "hangup":
            self._conn.hung_up = True  # Asterisk says so: "200 result=-1 (hangup)"
        if self._suspect(res) and await self._gone(res, "RECORD FILE"):
            # the far end left while recording: keep what was recorded
            return RecordResult(audio=audio, duration_ms=duration_ms, offset_ms=offset_ms,
                                end=InputEnd.HANGUP)
        if not res.ok or res.result == -1:
            return RecordResult(audio=None, duration_ms=0, offset_ms=offset_ms,
                                end=InputEnd.TIMEOUT)
        if res.data == "dtmf":
            return RecordResult(audio=audio, duration_ms=duration_ms, offset_ms=offset_ms,
                                end=InputEnd.INTERRUPTED, digit=_digit(res))
        return RecordResult(audio=audio, duration_ms=duration_ms, offset_ms=offset_ms,
                            end=InputEnd.TIMEOUT)

    async def transfer(self, target: str, variables: dict[str, str]) -> bool:
        """Refused (False) when the queue has no member ready to take the call, so the IVR
        can fall back to a ticket instead of leaving the patient waiting."""
        if not self.active or not _QUEUE_NAME.fullmatch(target):
            return False
        ready = await self._conn.send(
            command("GET FULL VARIABLE", f"${{QUEUE_MEMBER({target},ready)}}"))
        if self.hung_up:
            return False
        count = ready.data.strip()
        if ready.ok and ready.result == 1 and count.isascii() and count.isdigit() \
                and int(count) == 0:
            return False
        for name, value in variables.items():
            res = await self.set_variable(name, value)
            if not res:
                return False
        if not await self.set_variable(TRANSFER_VARIABLE, target):
            return False
        self._released = True
        self.transferred_to = target
        return True

    async def wait_for_silence(self, silence_s: float, timeout_s: float) -> bool:
        """Asterisk's WaitForSilence (app_waitforsilence) run through EXEC."""
        if not self.active:
            return False
        res = await self._conn.send(command(
            "EXEC", "WaitForSilence", f"{int(silence_s * 1000)},1,{max(1, int(timeout_s))}"))
        return not (self._suspect(res) and await self._gone(res, "WaitForSilence"))

    async def hangup(self) -> None:
        if not self.active:
            return
        await self._conn.send("HANGUP")
        self._conn.hung_up = True

    # -- helpers beyond the seam (the FastAGI session uses them) --------------------------

    async def set_variable(self, name: str, value: str) -> bool:
        """SET VARIABLE; works on a dead channel too (Asterisk still answers 200)."""
        if self._conn.closed or self._released:
            return False
        res = await self._conn.send(command("SET VARIABLE", check_variable_name(name), value))
        return res.ok

    async def get_variable(self, name: str) -> str | None:
        """GET VARIABLE: the value, or None when unset (`200 result=0`)."""
        if self._conn.closed:
            return None
        res = await self._conn.send(command("GET VARIABLE", check_variable_name(name)))
        if not res.ok or res.result != 1:
            return None
        return res.data

    async def answer(self) -> bool:
        if not self.active:
            return False
        res = await self._conn.send("ANSWER")
        return res.ok and res.result == 0
