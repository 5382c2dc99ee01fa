"""The byte stream under one FastAGI session: an `asyncio.Protocol` that hands out lines.

FastAGI is lock-step: the engine writes one command and reads one response line (rarely a
few), thousands of times per second on a busy server. `asyncio.start_server`'s
StreamReader/StreamWriter pair costs a protocol object, a reader, a writer, a waiter
future per partial read and a buffer search per call on top of that; here a response that
has arrived is returned without suspending, and a session is one protocol and one task.
`bench/fastagi.py` measures the difference against stock panoramisk (which uses streams).

`AgiStream` is both halves: `readline`/`readuntil` (StreamReader's semantics for what
`AgiConnection` uses: an incomplete line at the end of the stream is returned as is, a
block cut short raises `IncompleteReadError`, a line longer than `limit` raises
`LimitOverrunError`) and `write`/`close`/`is_closing`. With no transport it is
a plain buffer that a test emulator feeds with `feed_data`/`feed_eof`. Reading pauses when
more than `limit` bytes wait unread, so a peer that floods cannot grow the buffer without end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any


class AgiStream(asyncio.Protocol):
    """One FastAGI connection's bytes, in both directions."""

    def __init__(self, limit: int = 16384) -> None:
        self._limit = limit
        self._buffer = bytearray()
        self._eof = False
        self._waiter: asyncio.Future[None] | None = None
        self._transport: asyncio.Transport | None = None
        self._paused = False

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self.feed_data(data)
        if (not self._paused and self._transport is not None
                and len(self._buffer) > 2 * self._limit):
            self._paused = True
            self._transport.pause_reading()

    def eof_received(self) -> bool:
        self.feed_eof()
        return False  # close our side too: the session is over

    def connection_lost(self, exc: Exception | None) -> None:
        self.feed_eof()
        self._transport = None

    # -- feeding (the transport, or a test emulator) --------------------------------------

    def feed_data(self, data: bytes) -> None:
        self._buffer += data
        self._wake()

    def feed_eof(self) -> None:
        self._eof = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- reading -------------------------------------------------------------------------

    async def readline(self) -> bytes:
        """One line with its LF; at the end of the stream, what is left (maybe b"")."""
        line = await self._read_to(b"\n")
        return line if line is not None else self._take_rest()

    async def readuntil(self, separator: bytes) -> bytes:
        """Bytes up to and including `separator`."""
        data = await self._read_to(separator)
        if data is None:
            raise asyncio.IncompleteReadError(self._take_rest(), None)
        return data

    async def _read_to(self, separator: bytes) -> bytes | None:
        """Bytes up to and including `separator`; None at the end of the stream."""
        start = 0
        while True:
            at = self._buffer.find(separator, start)
            if at >= 0:
                end = at + len(separator)
                if end > self._limit:
                    raise asyncio.LimitOverrunError("line longer than the limit", end)
                data = bytes(self._buffer[:end])
                del self._buffer[:end]
                if self._paused:
                    self._resume()
                return data
            if len(self._buffer) > self._limit:
                raise asyncio.LimitOverrunError("line longer than the limit", len(self._buffer))
            if self._eof:
                return None
            start = max(0, len(self._buffer) - len(separator) + 1)
            self._waiter = asyncio.get_running_loop().create_future()
            if self._paused:
                self._resume()
            await self._waiter

    def _take_rest(self) -> bytes:
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest

    def _resume(self) -> None:
        if self._transport is not None and len(self._buffer) <= self._limit:
            self._paused = False
            self._transport.resume_reading()

    # -- writing -------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self._transport is None:
            raise ConnectionResetError("the FastAGI connection is closed")
        self._transport.write(data)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def is_closing(self) -> bool:
        return self._transport is None or self._transport.is_closing()


def session_protocol(session: Callable[[AgiStream], Coroutine[Any, Any, None]],
                     limit: int) -> Callable[[], AgiStream]:
    """A protocol factory for `loop.create_server`: each connection gets an `AgiStream` and
    one task running `session(stream)`, started when the connection is made."""

    class _Session(AgiStream):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            asyncio.get_running_loop().create_task(session(self))

    return lambda: _Session(limit)
