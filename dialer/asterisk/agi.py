"""The FastAGI wire protocol: environment block, result lines, argument quoting.

Everything Asterisk sends is parsed here into typed values (`AgiRequest`, `AgiResult`); no
raw line travels further. Behaviour matches Asterisk 22.10.1 as recorded in
`tests/fixtures/asterisk/agi/`:

- the environment is `agi_key: value` lines ending with an empty line (LF);
  `agi_network_script` carries the query string (`followup?attempt=42`);
- a result is `200 result=X [(data)] [endpos=N]`, or `510 ...` (unknown command),
  `511 ...` (dead channel), `520-...` (usage, several lines, ends with `520 ...`);
- when the far end hangs up Asterisk sends one bare `HANGUP` line *before* the response of
  the command in flight; it is a notice, not the response.
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from core.errors import TelephonyError
from dialer.answering_machine import AmdVerdict


class AgiProtocolError(TelephonyError):
    """Asterisk (or something pretending to be it) sent bytes we cannot parse."""

    code = "agi_protocol"


class AgiResultCode(enum.IntEnum):
    """The status code that starts every AGI response line."""

    TRYING = 100
    SUCCESS = 200
    INVALID_COMMAND = 510
    DEAD_CHANNEL = 511
    USAGE = 520


HANGUP_LINE = "HANGUP"

_RESULT_RE = re.compile(
    r"^(?P<code>[0-9]{3})(?P<sep>[ -])(?P<rest>.*)$"
)
_RESULT_BODY_RE = re.compile(
    r"^result=(?P<result>-?[0-9]*)(?:\s+\((?P<data>[^)]*)\))?(?:\s+endpos=(?P<endpos>-?[0-9]+))?\s*$"
)
_NEEDS_ESCAPE = re.compile(r'[\r\n\x00\\"]')
_VARIABLE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True, slots=True)
class AgiResult:
    """One parsed response line.

    `result` is the integer after `result=` (None when empty, as GET DATA sends on a
    timeout with no digit, or absent); `data` the text in parentheses; `endpos` the sample
    offset STREAM FILE and RECORD FILE report.
    """

    code: AgiResultCode
    result: int | None = None
    raw_result: str = ""
    data: str = ""
    endpos: int | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.code is AgiResultCode.SUCCESS

    @property
    def channel_dead(self) -> bool:
        """The channel is gone: 511, or `result=-1` (hangup during the command)."""
        return self.code is AgiResultCode.DEAD_CHANNEL or (self.ok and self.result == -1)


def parse_result_line(line: str) -> AgiResult:
    """Parse one response line (without its LF). Raises `AgiProtocolError` on garbage.

    The first line of a 520 usage block (`520-...`) parses as a USAGE result whose message
    is that first line; the caller reads on until the `520 ` end line.
    """
    if line.startswith("200 result="):
        fast = _parse_plain_success(line[11:])
        if fast is not None:
            return fast
    m = _RESULT_RE.match(line.rstrip("\r"))
    if m is None:
        raise AgiProtocolError(f"not an AGI response line: {line[:80]!r}")
    try:
        code = AgiResultCode(int(m["code"]))
    except ValueError as exc:
        raise AgiProtocolError(f"unknown AGI status {m['code']}") from exc
    rest = m["rest"]
    if code is not AgiResultCode.SUCCESS:
        return AgiResult(code=code, message=rest)
    body = _RESULT_BODY_RE.match(rest)
    if body is None:
        raise AgiProtocolError(f"malformed 200 response: {line[:80]!r}")
    raw = body["result"]
    endpos = body["endpos"]
    return AgiResult(
        code=code,
        result=int(raw) if raw not in ("", "-") else None,
        raw_result=raw,
        data=body["data"] or "",
        endpos=int(endpos) if endpos is not None else None,
    )


def _int_text(raw: str) -> bool:
    return raw.isascii() and (raw.isdigit() or (raw[:1] == "-" and raw[1:].isdigit()))


def _parse_plain_success(rest: str) -> AgiResult | None:
    """The answers Asterisk sends thousands of times a second, written as it writes them
    (`N`, `N (data)`, `N endpos=E`, `N (data) endpos=E`, single blanks), without a regex.
    None for anything else: the general parser decides."""
    raw, blank, tail = rest.partition(" ")
    if not _int_text(raw):
        return None
    data = ""
    if blank and tail[:1] == "(":
        close = tail.find(")")
        if close < 0:
            return None
        data, after = tail[1:close], tail[close + 1:]
        if after[:1] not in ("", " "):
            return None
        tail = after[1:]
    endpos: int | None = None
    if tail.startswith("endpos="):
        if not _int_text(tail[7:]):
            return None
        endpos, tail = int(tail[7:]), ""
    if tail:
        return None
    return AgiResult(code=AgiResultCode.SUCCESS, result=int(raw), raw_result=raw, data=data,
                     endpos=endpos)


@dataclass(frozen=True, slots=True)
class AgiRequest:
    """The AGI environment Asterisk sends when a session opens.

    Typed fields for what the engine reads; `env` keeps every `agi_*` value as sent
    (`agi_callerid`, the originate CallerID, is the hospital's, not the patient's).
    """

    network_script: str  # "followup?attempt=42": the path after host:port, query included
    script: str  # "followup"
    query: dict[str, str]
    channel: str = ""
    uniqueid: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @property
    def args(self) -> tuple[str, ...]:
        """The AGI() arguments after the script (`agi_arg_1`, `agi_arg_2`, ...)."""
        out: list[str] = []
        while (arg := self.env.get(f"agi_arg_{len(out) + 1}")) is not None:
            out.append(arg)
        return tuple(out)

    @property
    def attempt_id(self) -> str | None:
        """The attempt id from the query string (`attempt=`), if the dialplan passed one."""
        value = self.query.get("attempt", "").strip()
        return value or None

    @property
    def amd(self) -> AmdVerdict | None:
        """Answering-machine detection's verdict (`amd=` and `amdcause=`, the dialplan's
        `AMDSTATUS` and `AMDCAUSE`); None when the dialplan ran no detection."""
        return AmdVerdict.parse(self.query.get("amd"), self.query.get("amdcause"))

    @property
    def recording_lead_ms(self) -> int:
        """How long the call recording had run when this session began: the dialplan passes
        MixMonitor's start (`recorded=`) and the AGI start (`agi=`), both Asterisk's own
        epoch seconds, so the engine's offsets count from the recording's first sample
        whatever the two hosts' clocks say. 0 when either is missing or not a time."""
        started, now = _epoch(self.query.get("recorded")), _epoch(self.query.get("agi"))
        if started is None or now is None or not 0 <= now - started < 3600:
            return 0
        return round((now - started) * 1000)


def _epoch(raw: str | None) -> float | None:
    """Epoch seconds as `1733530000.123`, or None."""
    if not raw:
        return None
    whole, dot, frac = raw.strip().partition(".")
    if not (whole.isascii() and whole.isdigit()) or (dot and not (frac.isascii()
                                                                  and frac.isdigit())):
        return None
    return float(raw)


MAX_ENV_LINES = 200


_ENV_LINE = re.compile(r"^(agi_[^:\n]*): ?(.*)$", re.MULTILINE)


def parse_environment(block: str) -> AgiRequest:
    """Build an `AgiRequest` from the environment block (`agi_key: value` lines joined by
    LF, the final empty line excluded; a CR before an LF is dropped).

    Raises `AgiProtocolError` when a line is not `agi_key: value` or the block names no
    `agi_network_script` (a FastAGI request always does).
    """
    if "\r" in block:
        block = block.replace("\r\n", "\n").rstrip("\r")
    lines = block.count("\n") + 1
    if lines > MAX_ENV_LINES:
        raise AgiProtocolError("AGI environment too long")
    pairs = _ENV_LINE.findall(block)  # one pass in C; every line must be a pair
    if len(pairs) != lines:
        bad = next(line for line in block.split("\n") if not _ENV_LINE.fullmatch(line))
        raise AgiProtocolError(f"bad AGI environment line: {bad[:80]!r}")
    env = dict(pairs)
    script_full = env.get("agi_network_script")
    if script_full is None:
        raise AgiProtocolError("AGI environment has no agi_network_script")
    script, _, qs = script_full.partition("?")
    return AgiRequest(network_script=script_full, script=script,
                      query=dict(parse_qsl(qs, keep_blank_values=True)) if qs else {},
                      channel=env.get("agi_channel", ""), uniqueid=env.get("agi_uniqueid", ""),
                      env=env)


@functools.lru_cache(maxsize=4096)
def quote(value: str) -> str:
    """One AGI argument, safe whatever it holds.

    Asterisk splits a command on blanks and honours double quotes and backslash escapes;
    a CR or LF would end the command early and let the rest run as a new one. So: drop
    CR/LF/NUL, escape backslash and quote, wrap in double quotes. Cached: a call's
    arguments (its prompts, timeouts, variable names) repeat across calls.
    """
    if _NEEDS_ESCAPE.search(value) is None:
        return f'"{value}"'
    cleaned = value.replace("\r", "").replace("\n", "").replace("\x00", "")
    cleaned = cleaned.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{cleaned}"'


@functools.lru_cache(maxsize=256)
def check_variable_name(name: str) -> str:
    """A channel variable name we are willing to send (letters, digits, underscore)."""
    if not _VARIABLE_NAME_RE.fullmatch(name):
        raise ValueError(f"invalid channel variable name {name!r}")
    return name


def command(verb: str, *args: str) -> str:
    """A full command line: the verb as is (ours, constant) and every argument quoted."""
    return " ".join([verb, *map(quote, args)])
