"""Click-to-call through Asterisk: the one AsteriskClickToCall adapter against the fake AMI
server (recorded Asterisk responses). The agent's phone is originated into
[followup-callback] with the patient's number and the ticket id, over one AMI login."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import TelephonyError, TelephonyUnavailable
from dialer.asterisk.ami import AmiConfig
from dialer.asterisk.click_to_call import AsteriskClickToCall
from dialer.asterisk.fake_ami import AmiScenario, FakeAmiServer
from tests.unit.console.server import free_port

AMI = Path(__file__).resolve().parent.parent / "fixtures" / "asterisk" / "ami"


@pytest.fixture
def fake_ami() -> Iterator[FakeAmiServer]:
    scenario = AmiScenario.load(AMI / "originate_answered_ivr.dialogue.txt")
    server = FakeAmiServer({}, default=scenario, secret="s3cret")
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _config(port: int, secret: str = "s3cret") -> AmiConfig:
    return AmiConfig("127.0.0.1", port, "followup", secret, connect_timeout_s=1.0,
                     action_timeout_s=5.0, backoff_initial_s=0.05, backoff_max_s=0.1)


def _call(click: AsteriskClickToCall, *calls: tuple[str, str, int]) -> list[str]:
    async def run() -> list[str]:
        try:
            return [await click.call(agent_extension=ext, patient_phone=phone, ticket_id=t)
                    for ext, phone, t in calls]
        finally:
            await click.close()
    return asyncio.run(run())


def test_originates_the_agent_phone_into_the_callback_context(fake_ami: FakeAmiServer
                                                               ) -> None:
    click = AsteriskClickToCall(_config(fake_ami.port), frozenset({"2001", "2002"}),
                                caller_id="Hospital <8001>")
    [message, _] = _call(click, ("2001", "+8613800138000", 42), ("2002", "+8613800138000", 43))
    assert "2001" in message
    assert fake_ami.actions.count("login") == 1  # one AMI connection, not a login per click
    frame = fake_ami.originates[0]
    assert frame.get("Channel") == "PJSIP/2001"
    assert frame.get("Context") == "followup-callback"
    assert frame.get("Exten") == "+8613800138000"
    assert frame.get_all("Variable") == ["FOLLOWUP_TICKET=42"]
    assert frame.get("CallerID") == "Hospital <8001>"


def test_unknown_extensions_are_never_rung(fake_ami: FakeAmiServer) -> None:
    click = AsteriskClickToCall(_config(fake_ami.port), frozenset({"2001"}))
    with pytest.raises(TelephonyError, match="not a configured agent phone"):
        _call(click, ("9999", "+8613800138000", 1))
    assert fake_ami.originates == []


def test_unreachable_ami_is_a_temporary_telephony_error() -> None:
    click = AsteriskClickToCall(_config(free_port()), frozenset({"2001"}))
    with pytest.raises(TelephonyUnavailable):
        _call(click, ("2001", "+8613800138000", 1))
