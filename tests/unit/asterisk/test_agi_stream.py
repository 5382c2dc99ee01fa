"""`AgiStream`: lines out of bytes however they arrive, bounded buffering, clean ends."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.asterisk.agi_stream import AgiStream


class _Transport(asyncio.Transport):
    """Notes what the stream asks of its transport."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.written = b""
        self.closing = False

    def pause_reading(self) -> None:
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.calls.append("resume")

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing


def _receive(stream: AgiStream, data: bytes) -> None:
    """What the transport does with bytes from the socket: read into `get_buffer`."""
    while data:
        window = stream.get_buffer(-1)
        n = min(len(window), len(data))
        window[:n] = data[:n]
        stream.buffer_updated(n)
        data = data[n:]


@given(st.lists(st.text(st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)),
                        max_size=40), min_size=1, max_size=8),
       st.lists(st.integers(1, 7), min_size=1, max_size=30))
def test_lines_come_out_whole_however_the_bytes_are_cut(lines: list[str],
                                                        cuts: list[int]) -> None:
    payload = "".join(f"{line}\n" for line in lines).encode()

    async def run() -> list[bytes]:
        stream = AgiStream()

        async def feed() -> None:
            at, i = 0, 0
            while at < len(payload):
                step = cuts[i % len(cuts)]
                if i % 2:
                    stream.feed_data(payload[at:at + step])
                else:
                    _receive(stream, payload[at:at + step])
                at, i = at + step, i + 1
                await asyncio.sleep(0)
            stream.feed_eof()

        feeder = asyncio.create_task(feed())
        got = [await stream.readline() for _ in lines]
        await feeder
        return got

    assert asyncio.run(run()) == [f"{line}\n".encode() for line in lines]


def test_the_end_of_the_stream_gives_what_is_left() -> None:
    async def run() -> None:
        stream = AgiStream()
        stream.feed_data(b"agi_request: x\nagi_chan")
        stream.feed_eof()
        assert await stream.readline() == b"agi_request: x\n"
        assert await stream.readline() == b"agi_chan"
        assert await stream.readline() == b""
        cut = AgiStream()
        cut.feed_data(b"agi_request: x\n")
        cut.feed_eof()
        with pytest.raises(asyncio.IncompleteReadError) as caught:
            await cut.readuntil(b"\n\n")
        assert caught.value.partial == b"agi_request: x\n"

    asyncio.run(run())


def test_a_flood_pauses_reading_and_an_overlong_line_is_refused() -> None:
    async def run() -> None:
        stream = AgiStream(limit=100)
        transport = _Transport()
        stream.connection_made(transport)
        _receive(stream, b"x" * 150)
        assert transport.calls == []
        _receive(stream, b"x" * 100)  # 250 unread bytes > twice the limit
        assert transport.calls == ["pause"]
        with pytest.raises(asyncio.LimitOverrunError):
            await stream.readline()

    asyncio.run(run())


def test_reading_resumes_once_the_buffer_drains() -> None:
    async def run() -> None:
        stream = AgiStream(limit=100)
        transport = _Transport()
        stream.connection_made(transport)
        _receive(stream, b"200 result=0\n" * 20)  # 260 bytes of short lines
        assert transport.calls == ["pause"]
        for _ in range(20):
            assert await stream.readline() == b"200 result=0\n"
        assert transport.calls == ["pause", "resume"]

    asyncio.run(run())


def test_writes_go_to_the_transport_until_it_is_lost() -> None:
    async def run() -> None:
        stream = AgiStream()
        transport = _Transport()
        stream.connection_made(transport)
        stream.write(b"ANSWER\n")
        assert transport.written == b"ANSWER\n"
        stream.connection_lost(None)
        assert stream.is_closing()
        assert await stream.readline() == b""
        with pytest.raises(ConnectionResetError):
            stream.write(b"HANGUP\n")

    asyncio.run(run())
