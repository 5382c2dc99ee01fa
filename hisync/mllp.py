"""An MLLP listener: HL7 v2 messages over TCP, framed <VT> message <FS><CR>, each answered
with its ACK on the same connection, in order.

Several connections are served at once; each connection's messages are applied one after the
other (an ADT feed's order matters: an update must not overtake its admission). The framing
is done here on bytes (see `hisync.hl7_adt` for why not python-hl7's streams); `handle`
turns one frame into the ACK bytes to send. Bytes outside a frame are logged and skipped; a
frame cut off by the connection closing goes to `truncated` (to be kept in quarantine: no
answer can reach its sender). A frame growing past `hard_limit` closes the connection: the
listener never buffers without bound. When a message cannot be taken at all (the store is
away), the connection is closed without an answer: HL7 senders send an unanswered message
again, and nothing was marked as seen.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c"
CARRIAGE_RETURN = b"\r"
HARD_LIMIT = 32 * 1024 * 1024

Handle = Callable[[bytes], Awaitable[bytes]]
Truncated = Callable[[bytes], Awaitable[None]]


def frame(payload: bytes) -> bytes:
    """One message (or ACK) as MLLP sends it."""
    return START_BLOCK + payload + END_BLOCK + CARRIAGE_RETURN


class MllpListener:
    """Serves MLLP on (host, port) until `close()`."""

    def __init__(self, handle: Handle, truncated: Truncated,
                 hard_limit: int = HARD_LIMIT) -> None:
        self._handle = handle
        self._truncated = truncated
        self._hard_limit = hard_limit
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the port (useful with port 0)."""
        self._server = await asyncio.start_server(self._serve, host, port,
                                                  limit=1024 * 1024)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        buf = bytearray()
        try:
            while True:
                chunk = await reader.read(256 * 1024)
                if not chunk:
                    break
                buf += chunk
                if not await self._frames(buf, writer, peer):
                    return
            if buf.strip(b"\r\n\x1c"):
                log.warning("MLLP %s: connection closed inside a message (%d bytes kept)",
                            peer, len(buf))
                await self._truncated(bytes(buf.lstrip(START_BLOCK)))
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.warning("MLLP %s: connection lost (%s)", peer, exc)
        except Exception as exc:  # e.g. the store is away: no ACK, the sender sends again
            log.error("MLLP %s: message not taken (%s: %s); connection closed without an "
                      "answer so the sender sends it again", peer, type(exc).__name__, exc)
        finally:
            writer.close()

    async def _frames(self, buf: bytearray, writer: asyncio.StreamWriter,
                      peer: object) -> bool:
        """Answer every complete frame in `buf` (removing it); False: close the connection."""
        while buf:
            start = buf.find(START_BLOCK)
            if start != 0:
                junk = len(buf) if start < 0 else start
                if buf[:junk].strip(b"\r\n"):
                    log.warning("MLLP %s: %d bytes outside a frame skipped", peer, junk)
                del buf[:junk]
                continue
            end = buf.find(END_BLOCK)
            if end < 0:
                if len(buf) > self._hard_limit:
                    log.error("MLLP %s: a message passed %d bytes without an end block; "
                              "connection closed", peer, self._hard_limit)
                    await self._truncated(bytes(buf[1:]))
                    return False
                return True
            payload = bytes(buf[1:end])
            del buf[:end + 1]
            if buf[:1] == CARRIAGE_RETURN:
                del buf[:1]
            ack = await self._handle(payload)
            writer.write(frame(ack))
            await writer.drain()
        return True
