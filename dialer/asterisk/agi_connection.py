"""One FastAGI socket: send a command line, read its response, notice hangups.

Reads the environment block, then runs strictly one command at a time (AGI is lock-step).
The bare `HANGUP` line Asterisk sends when the far end leaves is consumed here and turns
`hung_up` on, as does a 511; the response of the command in flight still follows the
HANGUP line and is returned. `result=-1` is ambiguous (see `confirm_alive`).
An end of stream, a garbled line or a read timeout also ends the session (`closed`), never
with an exception escaping to the server.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Protocol

from dialer.asterisk.agi import (
    HANGUP_LINE,
    AgiProtocolError,
    AgiRequest,
    AgiResult,
    AgiResultCode,
    parse_environment,
    parse_result_line,
)
from dialer.asterisk.agi_stream import AgiStream

log = logging.getLogger(__name__)

MAX_USAGE_LINES = 100
_DEAD = AgiResult(code=AgiResultCode.DEAD_CHANNEL, message="connection closed")


@functools.lru_cache(maxsize=4096)
def _parse_response(data: bytes) -> AgiResult | None:
    """One response line as read (LF included); None for the bare HANGUP notice.

    Cached on the bytes: Asterisk answers the same few lines over and over (`200 result=0`,
    a prompt's `endpos`). An `AgiResult` is immutable, and garbage raises (never cached)."""
    raw = data[:-1].decode("utf-8", "replace").rstrip("\r")
    return None if raw == HANGUP_LINE else parse_result_line(raw)


class AgiWriter(Protocol):
    """The sending half of a session (`AgiStream`, or a test emulator)."""

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...

    def is_closing(self) -> bool: ...


class AgiConnection:
    """The lock-step command channel of one FastAGI session."""

    def __init__(self, reader: AgiStream, writer: AgiWriter,
                 command_timeout_s: float | None = None) -> None:
        self._reader = reader
        self._writer = writer
        self._timeout = command_timeout_s
        self.hung_up = False  # Asterisk told us the channel is gone (HANGUP line, 511)
        self.closed = False  # the socket is unusable: nothing more can be sent

    async def read_environment(self) -> AgiRequest:
        """Read and parse the environment block. Raises `AgiProtocolError`."""
        try:
            # one read for the whole block (it ends with an empty line), not one per line
            block = await self._reader.readuntil(b"\n\n")
        except asyncio.IncompleteReadError as exc:
            raise AgiProtocolError("connection closed inside the AGI environment") from exc
        except asyncio.LimitOverrunError as exc:
            raise AgiProtocolError("AGI environment too long") from exc
        return parse_environment(block[:-2].decode("utf-8", "replace"))

    async def send(self, line: str) -> AgiResult:
        """Send one command line and return its response.

        Never raises for protocol trouble: a dead or closed session answers a synthetic
        511 without touching the socket.
        """
        if self.closed:
            return _DEAD
        if "\n" in line or "\r" in line:
            raise ValueError("an AGI command is one line")  # a programming error, not input
        reader = self._reader
        try:
            self._writer.write(line.encode("utf-8") + b"\n")
            if self._timeout is not None:
                async with asyncio.timeout(self._timeout):  # no extra Task, unlike wait_for
                    return await self._read_response(None)
            # else the server bounds the whole session. The common case inline (one
            # line, a plain success): a command is answered thousands of times a second
            while (data := reader.take()) is None:
                if reader.at_eof:
                    raise AgiProtocolError("connection closed before the response")
                await reader.more()
            result = _parse_response(data)
            if result is not None and result.code is AgiResultCode.SUCCESS:
                return result
            return await self._read_response(data)
        except asyncio.LimitOverrunError:
            log.warning("AGI session ended: a line longer than the limit")
        except (ConnectionError, OSError, TimeoutError, AgiProtocolError) as exc:
            log.warning("AGI session ended on %s: %s", type(exc).__name__, exc)
        self._close()
        return _DEAD

    async def _read_response(self, data: bytes | None) -> AgiResult:
        """The response, from the line `data` already read (if any) on."""
        reader = self._reader
        while True:
            if data is None:
                data = reader.take()
                if data is None:
                    if reader.at_eof:
                        raise AgiProtocolError("connection closed before the response")
                    await reader.more()
                    continue
            result = _parse_response(data)
            if result is None:  # the bare HANGUP notice: the response follows it
                self.hung_up = True
                data = None
                continue
            if result.code is AgiResultCode.SUCCESS:
                return result
            if result.code is AgiResultCode.TRYING:
                data = None
                continue
            if result.code is AgiResultCode.USAGE and data.startswith(b"520-"):
                for _ in range(MAX_USAGE_LINES):
                    more = await self._readline()
                    if more is None or more.startswith("520 "):
                        break
            if result.code is AgiResultCode.DEAD_CHANNEL:
                self.hung_up = True
            return result

    async def confirm_alive(self) -> bool:
        """After an ambiguous `result=-1`: is the channel still there? (CHANNEL STATUS)

        Asterisk 22 answers -1 both when the caller hung up during the command and when
        the command itself failed on a live call (a prompt file that does not exist:
        `STREAM FILE` -> `200 result=-1 endpos=0`, `GET DATA` -> `200 result=-1`). On a dead
        channel CHANNEL STATUS gets 511 (often after the bare HANGUP line)."""
        if self.hung_up or self.closed:
            return False
        res = await self.send("CHANNEL STATUS")
        if res.code is not AgiResultCode.SUCCESS or (res.result is not None and res.result < 0):
            self.hung_up = True
        return not self.hung_up

    async def _readline(self) -> str | None:
        """One line, None at the end of the stream (possibly mid-line)."""
        try:
            data = await self._reader.readline()
        except asyncio.LimitOverrunError as exc:
            raise AgiProtocolError("AGI line too long") from exc
        if not data.endswith(b"\n"):
            return None
        return data[:-1].decode("utf-8", "replace").rstrip("\r")

    def _close(self) -> None:
        self.closed = True
        self.hung_up = True
        self._writer.close()

    def close(self) -> None:
        """Close the socket: for Asterisk, the AGI script has ended."""
        if not self._writer.is_closing():
            self._writer.close()
        self.closed = True
