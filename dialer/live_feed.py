"""The live board served to the console: server-sent events over HTTP (127.0.0.1 unless
`dialer.live_feed_host` says otherwise).

`GET /events` answers `text/event-stream`: a snapshot, then each change of this dialer's
calls and of its queues' nurses and agents as it happens (`dialer.live_board`), and the
lines figure every `tick_s`. The feed carries department, script and attempt ids and staff
members' names: no patient data leaves on it.
The feed announces its address in the store (`core.live_feeds`) while it runs, so the
console finds every dialer process without configuration; it withdraws it at the stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Awaitable, Callable

from dialer.live_board import LiveBoard

log = logging.getLogger(__name__)

Announce = Callable[[str], Awaitable[None]]
Withdraw = Callable[[], Awaitable[None]]

_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
         b"Connection: close\r\n\r\n")
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class LiveFeed:
    """Serves one `LiveBoard` to any number of console processes."""

    def __init__(self, board: LiveBoard, host: str = "127.0.0.1", port: int = 0,
                 tick_s: float = 1.0, announce_every_s: float = 30.0) -> None:
        self._board = board
        self._host = host
        self._port = port
        self._tick_s = tick_s
        self._announce_every_s = announce_every_s
        self._clients: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event, announce: Announce, withdraw: Withdraw) -> str:
        """Serve until `stop`; returns the URL it served on."""
        server = await asyncio.start_server(self._serve, self._host, self._port)
        host, port = server.sockets[0].getsockname()[:2]
        if host in ("0.0.0.0", "::"):  # every interface: others reach it by the host name
            host = socket.gethostname()
        url = f"http://{host}:{port}/events"
        log.info("live feed for the wallboard on %s", url)
        since_announce = self._announce_every_s
        try:
            while not stop.is_set():
                if since_announce >= self._announce_every_s:
                    since_announce = 0.0
                    try:
                        await announce(url)
                    except Exception as exc:  # the store is away: the feed goes on
                        log.warning("live feed: could not announce %s (%s)", url, exc)
                self._board.tick()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._tick_s)
                since_announce += self._tick_s
        finally:
            server.close()
            self._board.close()  # each client's stream ends normally
            await asyncio.gather(*self._clients, return_exceptions=True)
            await server.wait_closed()
            with contextlib.suppress(Exception):
                await withdraw()
        return url

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        me = asyncio.current_task()
        if me is not None:  # awaited at the stop
            self._clients.add(me)
            me.add_done_callback(self._clients.discard)
        queue = None
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            if not request.startswith(b"GET /events "):
                writer.write(_NOT_FOUND)
                return
            writer.write(_HEAD)
            queue = self._board.subscribe()
            while True:
                message = await queue.get()
                if message is None:
                    return  # too slow: the client reconnects and starts from a snapshot
                chunk = [message]
                while not queue.empty() and len(chunk) < 500:
                    more = queue.get_nowait()
                    if more is None:
                        return
                    chunk.append(more)
                writer.write(b"".join(b"data: " + json.dumps(m).encode() + b"\n\n"
                                      for m in chunk))
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                ConnectionError):
            return
        finally:
            if queue is not None:
                self._board.unsubscribe(queue)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
