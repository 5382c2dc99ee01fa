"""Garbage, truncated or hostile FastAGI input never crashes the server or other sessions."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.clock import FakeClock
from dialer.asterisk.agi import AgiRequest
from dialer.asterisk.agi_channel import AgiChannel
from dialer.asterisk.fastagi import FastAgiServer
from dialer.asterisk.testing import AgiRecording, replay_agi_session
from ivr.channel import Prompt

AGI = Path(__file__).resolve().parents[2] / "fixtures" / "asterisk" / "agi"
REC = AgiRecording.load(AGI / "followup_dtmf_record.dialogue.txt")
ENV = REC.environment_bytes("followup?attempt=a1")
HELLO = Prompt(Path("/s/hello.wav"), "hello")


async def _serve(payloads: list[bytes]) -> tuple[list[str], FastAgiServer[str]]:
    done: list[str] = []

    async def resolve(attempt_id: str) -> str | None:
        return attempt_id

    async def handler(attempt: str, request: AgiRequest, channel: AgiChannel) -> None:
        await channel.answer()
        await channel.play(HELLO, "12")
        await channel.collect_digits(HELLO, 2, 3.0)
        await channel.record(None, 5.0, 1.0)
        await channel.hangup()
        done.append(attempt)

    server: FastAgiServer[str] = FastAgiServer(
        resolve, handler, FakeClock(dt.datetime(2026, 1, 1, tzinfo=dt.UTC)), Path("/tmp"),
        port=0, env_timeout_s=2.0, command_timeout_s=2.0)
    await server.start()
    try:
        for payload in payloads:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            try:
                writer.write(payload)
                await writer.drain()
                writer.write_eof()
                await asyncio.wait_for(reader.read(), 5)  # the server closes its side
            except ConnectionResetError:
                pass  # it closed while bytes it refused to read were still unread: a reset
            writer.close()
            with contextlib.suppress(ConnectionResetError):
                await writer.wait_closed()
        # a well-behaved session afterwards still works
        await asyncio.wait_for(replay_agi_session("127.0.0.1", server.port, REC,
                                                  script="followup?attempt=good"), 5)
    finally:
        await server.close()
    return done, server


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=3))
def test_garbage_session_starts(payloads: list[bytes]) -> None:
    done, server = asyncio.run(_serve(payloads))
    assert "good" in done
    assert server.stats.active == 0


_responses = st.one_of(
    st.sampled_from(["200 result=0", "200 result=-1", "HANGUP", "511 dead", "510 unknown",
                     "520-usage", "520 End", "100 Trying", "200 result= (timeout)",
                     "200 result=35 (dtmf) endpos=", "200 result=99999999999999 endpos=-5",
                     "200 result=1 (", "", "\r", "result=1"]),
    st.text(max_size=40).map(lambda s: s.replace("\n", " ")),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_responses, max_size=12), st.booleans())
def test_garbage_responses_after_a_valid_environment(lines: list[str], truncate: bool) -> None:
    body = "\n".join(lines).encode()
    if not truncate:
        body += b"\n"
    done, server = asyncio.run(_serve([ENV + body]))
    assert "good" in done
    assert server.stats.active == 0


def test_an_overlong_line_is_refused_not_buffered_forever() -> None:
    done, _server = asyncio.run(_serve([ENV + b"200 result=" + b"1" * 100_000 + b"\n"]))
    assert "good" in done


def test_a_peer_that_connects_and_says_nothing_is_dropped_after_the_env_timeout() -> None:
    async def run() -> FastAgiServer[str]:
        async def resolve(attempt_id: str) -> str | None:
            return attempt_id

        async def handler(attempt: str, request: AgiRequest, channel: AgiChannel) -> None:
            raise AssertionError("no environment, no call")

        server: FastAgiServer[str] = FastAgiServer(
            resolve, handler, FakeClock(dt.datetime(2026, 1, 1, tzinfo=dt.UTC)), Path("/tmp"),
            port=0, env_timeout_s=0.2)
        await server.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"agi_request: half an environment\n")
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
            writer.close()
        finally:
            await server.close()
        return server

    server = asyncio.run(run())
    assert server.stats.protocol_errors == 1 and server.stats.active == 0
