"""The byte stream under one FastAGI session: a buffered protocol that hands out lines.

FastAGI is lock-step: the engine writes one command and reads one response line (rarely a
few), thousands of times per second on a busy server. `asyncio.start_server`'s
StreamReader/StreamWriter pair costs a protocol object, a reader, a writer, a waiter
future per partial read and a buffer search per call on top of that, and every read of a
plain `Protocol` allocates a 256 KiB bytes object (the transport's read size) only to
shrink it. Here the socket reads into the session's own small buffer (`BufferedProtocol`),
a response that has arrived is returned without suspending, and a session is one protocol
and one task. `bench/fastagi.py` measures the difference against stock panoramisk.

`AgiStream` is both halves: reading (`take` a line that has arrived, else wait for `more`;
`readline`/`readuntil` with StreamReader's semantics: an incomplete line at the end of the
stream is returned as is, a block cut short raises `IncompleteReadError`, a line longer
than `limit` raises `LimitOverrunError`) and `write`/`close`/`is_closing`. With no transport it is
a plain buffer that a test emulator feeds with `feed_data`/`feed_eof`. Reading pauses when
more than `limit` bytes wait unread, so a peer that floods cannot grow the buffer without end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any


class AgiStream(asyncio.BufferedProtocol):
    """One FastAGI connection's bytes, in both directions."""

    def __init__(self, limit: int = 16384) -> None:
        self._limit = limit
        # unread bytes are self._buf[self._start:self._end]; the buffer starts small and
        # grows (to a little over twice the limit: reading pauses before it is full)
        self._buf = bytearray(4096)
        self._start = 0
        self._end = 0
        self._eof = False
        self._waiter: asyncio.Future[None] | None = None
        self._transport: asyncio.Transport | None = None
        self._paused = False

    # -- asyncio.BufferedProtocol --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        self._make_room(max(1, sizehint))  # asyncio asks with -1: any size will do
        return memoryview(self._buf)[self._end:]

    def buffer_updated(self, nbytes: int) -> None:
        self._end += nbytes
        self._wake()
        if (not self._paused and self._transport is not None
                and self._end - self._start > 2 * self._limit):
            self._paused = True
            self._transport.pause_reading()

    def eof_received(self) -> bool:
        self.feed_eof()
        return False  # close our side too: the session is over

    def connection_lost(self, exc: Exception | None) -> None:
        self.feed_eof()
        self._transport = None

    # -- feeding (a test emulator; the transport writes into `get_buffer`) ----------------

    def feed_data(self, data: bytes) -> None:
        self._make_room(len(data))
        self._buf[self._end:self._end + len(data)] = data
        self._end += len(data)
        self._wake()

    def feed_eof(self) -> None:
        self._eof = True
        self._wake()

    def _make_room(self, n: int) -> None:
        """At least `n` free bytes after the unread ones: move them to the front, or grow."""
        if len(self._buf) - self._end >= n:
            return
        unread = self._end - self._start
        if self._start:
            self._buf[:unread] = self._buf[self._start:self._end]
            self._start, self._end = 0, unread
        if len(self._buf) - unread < n:
            self._buf.extend(bytes(max(n, len(self._buf))))

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- reading -------------------------------------------------------------------------

    def take(self, separator: bytes = b"\n") -> bytes | None:
        """The bytes up to and including `separator` if they have arrived, else None (then
        `more()` says when to look again). Raises `LimitOverrunError` past the limit."""
        at = self._buf.find(separator, self._start, self._end)
        if at < 0:
            if self._end - self._start > self._limit:
                raise asyncio.LimitOverrunError("line longer than the limit",
                                                self._end - self._start)
            return None
        end = at + len(separator)
        if end - self._start > self._limit:
            raise asyncio.LimitOverrunError("line longer than the limit", end - self._start)
        data = bytes(self._buf[self._start:end])
        if end == self._end:
            self._start = self._end = 0
        else:
            self._start = end
        if self._paused:
            self._resume()
        return data

    @property
    def at_eof(self) -> bool:
        """The peer has closed: what is buffered is all there will be."""
        return self._eof

    def more(self) -> asyncio.Future[None]:
        """A future that completes when more bytes (or the end of the stream) arrive."""
        self._waiter = asyncio.get_running_loop().create_future()
        if self._paused:
            self._resume()
        return self._waiter

    async def readline(self) -> bytes:
        """One line with its LF; at the end of the stream, what is left (maybe b"")."""
        while (line := self.take()) is None:
            if self._eof:
                return self._take_rest()
            await self.more()
        return line

    async def readuntil(self, separator: bytes) -> bytes:
        """Bytes up to and including `separator`."""
        while (data := self.take(separator)) is None:
            if self._eof:
                raise asyncio.IncompleteReadError(self._take_rest(), None)
            await self.more()
        return data

    def _take_rest(self) -> bytes:
        rest = bytes(self._buf[self._start:self._end])
        self._start = self._end = 0
        return rest

    def _resume(self) -> None:
        if self._transport is not None and self._end - self._start <= self._limit:
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
