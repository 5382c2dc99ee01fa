"""MLLP framing on a real socket: frames split or joined by TCP, bytes outside frames, a
message cut off, one that never ends, and a handler that fails."""

from __future__ import annotations

import asyncio

from core.errors import StoreUnavailable
from hisync.mllp import MllpListener, frame


class Recorder:
    def __init__(self, fail_on: bytes = b"") -> None:
        self.handled: list[bytes] = []
        self.truncated: list[bytes] = []
        self.fail_on = fail_on

    async def handle(self, payload: bytes) -> bytes:
        if self.fail_on and payload == self.fail_on:
            raise StoreUnavailable("database unavailable")
        self.handled.append(payload)
        return b"ACK " + payload

    async def keep(self, payload: bytes) -> None:
        self.truncated.append(payload)


async def _serve(rec: Recorder, hard_limit: int = 1 << 20) -> tuple[MllpListener, int]:
    listener = MllpListener(rec.handle, rec.keep, hard_limit=hard_limit)
    return listener, await listener.start("127.0.0.1", 0)


async def _exchange(port: int, chunks: list[bytes], answers: int) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for chunk in chunks:
        writer.write(chunk)
        await writer.drain()
        await asyncio.sleep(0.01)
    got = [await asyncio.wait_for(reader.readuntil(b"\x1c\r"), 5) for _ in range(answers)]
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(0.05)
    return got


async def test_frames_split_and_joined_by_tcp_are_answered_in_order() -> None:
    rec = Recorder()
    listener, port = await _serve(rec)
    wire = frame(b"one") + frame(b"two") + b"\r\n" + b"junk" + frame(b"three")
    got = await _exchange(port, [wire[:3], wire[3:9], wire[9:]], 3)
    await listener.close()
    assert rec.handled == [b"one", b"two", b"three"]
    assert got == [frame(b"ACK one"), frame(b"ACK two"), frame(b"ACK three")]


async def test_a_message_cut_off_by_the_close_is_kept() -> None:
    rec = Recorder()
    listener, port = await _serve(rec)
    await _exchange(port, [frame(b"whole"), b"\x0bMSH|half"], 1)
    await listener.close()
    assert (rec.handled, rec.truncated) == ([b"whole"], [b"MSH|half"])


async def test_a_message_that_never_ends_closes_the_connection_past_the_hard_limit() -> None:
    rec = Recorder()
    listener, port = await _serve(rec, hard_limit=1000)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"\x0b" + b"x" * 5000)
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the listener
    writer.close()
    await listener.close()
    assert len(rec.truncated) == 1 and len(rec.truncated[0]) >= 1000


async def test_a_message_the_store_cannot_take_gets_no_answer_and_the_listener_goes_on(
        ) -> None:
    rec = Recorder(fail_on=b"bad")
    listener, port = await _serve(rec)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(frame(b"bad"))
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # no ACK: the sender resends
    writer.close()
    got = await _exchange(port, [frame(b"next")], 1)
    await listener.close()
    assert got == [frame(b"ACK next")]
