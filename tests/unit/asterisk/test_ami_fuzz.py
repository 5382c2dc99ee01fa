"""Garbage from the AMI side never crashes the client: it is dropped, or the link is
re-established; the client keeps answering."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import TelephonyUnavailable
from dialer.asterisk.ami import AmiClient, AmiConfig
from dialer.asterisk.ami_messages import AmiEvent, FullyBooted


async def _session(garbage: bytes) -> tuple[list[AmiEvent], bool]:
    """A server that logs the client in, sends `garbage`, then answers pings."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        try:
            while True:
                lines = []
                while True:
                    raw = await reader.readline()
                    if not raw:
                        return
                    if raw in (b"\r\n", b"\n"):
                        break
                    lines.append(raw.decode().strip())
                action = dict(line.split(": ", 1) for line in lines if ": " in line)
                aid = action.get("ActionID", "")
                if action.get("Action") == "Login":
                    writer.write(f"Response: Success\r\nActionID: {aid}\r\n\r\n".encode())
                    writer.write(garbage)
                    writer.write(b"\r\n\r\nEvent: FullyBooted\r\nStatus: Fully Booted\r\n\r\n")
                else:
                    writer.write(f"Response: Success\r\nActionID: {aid}\r\nPing: Pong\r\n\r\n"
                                 .encode())
        except (ConnectionError, OSError):
            return
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    events: list[AmiEvent] = []
    client = AmiClient(AmiConfig("127.0.0.1", port, "u", "s", connect_timeout_s=1,
                                 action_timeout_s=1, ping_interval_s=5,
                                 backoff_initial_s=0.05), events.append)
    try:
        await client.start()
        ok = await client.wait_connected(2)
        if ok:
            await client.send_action("Ping")
    except TelephonyUnavailable:
        ok = False
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
    return events, ok


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.binary(max_size=400),
    st.lists(st.sampled_from([b"Event: Hangup\r\nCause: x\r\nUniqueid: \r\n\r\n",
                              b"Event: OriginateResponse\r\nReason: 99\r\n\r\n",
                              b"Response: Success\r\nActionID: nobody\r\n\r\n",
                              b"Event: CoreShowChannelsComplete\r\n\r\n",
                              b": no key\r\n\r\n", b"\xff\xfe\r\n\r\n",
                              b"Event: VarSet\r\nVariable\r\n\r\n"]),
             max_size=6).map(b"".join)))
def test_garbage_after_login_never_crashes_the_client(garbage: bytes) -> None:
    events, ok = asyncio.run(_session(garbage))
    assert ok  # still logged in and answering
    assert any(isinstance(e, FullyBooted) for e in events)  # the stream resynchronised


def test_a_server_that_is_not_asterisk_is_refused() -> None:
    async def run() -> None:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = AmiClient(AmiConfig("127.0.0.1", port, "u", "s", connect_timeout_s=0.3,
                                     backoff_initial_s=0.05), lambda e: None)
        try:
            with pytest.raises(TelephonyUnavailable):
                await client.start()
        finally:
            await client.close()
            server.close()
            await server.wait_closed()

    asyncio.run(run())


def test_messages_cut_anywhere_by_the_network_arrive_whole() -> None:
    """The client reads whole chunks: a message (and a UTF-8 name) split between reads
    arrives whole; an event the engine does not use is dropped unparsed."""
    stream = ("Event: RTCPSent\r\nChannel: PJSIP/x\r\n\r\n"
              "Event: VarSet\r\nChannel: PJSIP/carrier-1\r\nUniqueid: 1.1\r\n"
              "Variable: FOLLOWUP_NAME\r\nValue: 李小明\r\n\r\n"
              "Event: FullyBooted\r\nStatus: Fully Booted\r\n\r\n").encode()

    async def run() -> list[AmiEvent]:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"Asterisk Call Manager/11.0.0\r\n")
            login = await reader.readuntil(b"\r\n\r\n")
            aid = next(line.split(b": ", 1)[1] for line in login.split(b"\r\n")
                       if line.startswith(b"ActionID"))
            writer.write(b"Response: Success\r\nActionID: " + aid + b"\r\n\r\n")
            try:
                for i in range(len(stream)):  # one byte per write
                    writer.write(stream[i:i + 1])
                    await writer.drain()
                    await asyncio.sleep(0)
                await reader.read()
            finally:
                writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        events: list[AmiEvent] = []
        client = AmiClient(AmiConfig("127.0.0.1", port, "u", "s", connect_timeout_s=2),
                           events.append)
        try:
            await client.start()
            for _ in range(200):
                if any(isinstance(e, FullyBooted) for e in events):
                    break
                await asyncio.sleep(0.01)
        finally:
            await client.close()
            server.close()
            await server.wait_closed()
        return events

    events = asyncio.run(run())
    assert [type(e).__name__ for e in events] == ["VarSet", "FullyBooted"]
    assert getattr(events[0], "value", None) == "李小明"
