"""AsteriskBackend end to end: AMI originate and the FastAGI IVR of the same call, both
halves played by a fake Asterisk from the recordings; click-to-call."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.clock import FakeClock
from core.enums import DialOutcome, ScriptOutcome
from core.errors import TelephonyError
from dialer.asterisk.ami import AmiConfig
from dialer.asterisk.backend import AsteriskBackend
from dialer.asterisk.fake_ami import AmiScenario, FakeAmiServer
from dialer.asterisk.telephony import OriginatePlan
from dialer.asterisk.testing import AgiRecording, replay_agi_session
from dialer.telephony import CallReport, CallRequest
from ivr.channel import Channel, Prompt

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "asterisk"
PAIRS = {"1001": ("originate_answered_ivr", "followup_dtmf_record"),
         "1007": ("originate_ivr_to_queue", "followup_nurse_to_queue"),
         "1006": ("originate_baresip_hangup_midprompt", "followup_hangup_midprompt")}
HELLO = Prompt(Path("/s/hello.wav"), "hello")


@dataclass(frozen=True)
class Result:
    outcome: ScriptOutcome
    digits: str


async def ivr(attempt_id: str, channel: Channel) -> Result:
    """A tiny IVR: greet, ask one key, hand 2 to the agents."""
    await channel.play(HELLO)
    if channel.hung_up:
        return Result(ScriptOutcome.PARTIAL, "")
    got = await channel.collect_digits(HELLO, 1, 8.0)
    if got.digits == "2" and await channel.transfer("followup-agents",
                                                   {"FOLLOWUP_SUMMARY": "asked for a person"}):
        return Result(ScriptOutcome.TRANSFERRED, got.digits)
    await channel.hangup()
    return Result(ScriptOutcome.COMPLETED if got.digits else ScriptOutcome.PARTIAL, got.digits)


async def run_call(number: str) -> tuple[CallReport, FakeAmiServer]:
    ami_name, agi_name = PAIRS[number]
    fake = FakeAmiServer(
        {f"PJSIP/{number}": AmiScenario.load(FIX / "ami" / f"{ami_name}.dialogue.txt")},
        agi_dialogues={ami_name: AgiRecording.load(FIX / "agi" / f"{agi_name}.dialogue.txt")})
    await fake.start()
    backend = AsteriskBackend(
        AmiConfig("127.0.0.1", fake.port, "followup", "secret", action_timeout_s=3),
        OriginatePlan(dial_template="PJSIP/{number}", ivr_grace_s=1.0),
        FakeClock(dt.datetime(2026, 3, 10, tzinfo=dt.UTC)), ivr, "127.0.0.1", 0, Path("/tmp"))
    try:
        await backend.start()
        fake.agi_port = backend.fastagi.port
        report = await asyncio.wait_for(backend.place(CallRequest(
            attempt_id="777", task_id="t1", phone=number, caller_id="5550100", timeout_s=30,
            locale="en-US")), 10)
    finally:
        await backend.close()
        await fake.close()
    return report, fake


async def test_answered_call_carries_the_ivr_result() -> None:
    report, fake = await run_call("1001")
    assert report.outcome is DialOutcome.ANSWERED
    assert isinstance(report.ivr, Result)
    assert report.ivr == Result(ScriptOutcome.COMPLETED, "1")
    assert fake.agi_sessions[0][:2] == ['STREAM FILE "/s/hello" ""',
                                        'GET DATA "/s/hello" "8000" "1"']
    assert report.recording is not None


async def test_key_two_goes_to_the_agents_queue_and_the_agent_is_attached() -> None:
    report, fake = await run_call("1007")
    assert report.ivr == Result(ScriptOutcome.TRANSFERRED, "2")
    assert fake.agi_sessions[0][-1] == 'SET VARIABLE "FOLLOWUP_TRANSFER" "followup-agents"'
    assert report.queue == "followup-agents"
    assert report.agent is not None and report.agent.member_name == "Agent 2001"
    assert report.agent.talk_time_s == 10


async def test_hangup_mid_prompt_reports_answered_with_a_partial_ivr() -> None:
    report, fake = await run_call("1006")
    assert report.outcome is DialOutcome.ANSWERED
    assert report.ivr == Result(ScriptOutcome.PARTIAL, "")
    # the recorded -1 is checked with CHANNEL STATUS (511 after the HANGUP line): gone
    assert fake.agi_sessions == [['STREAM FILE "/s/hello" ""', "CHANNEL STATUS"]]


async def test_a_session_for_an_attempt_not_in_flight_is_ended_politely() -> None:
    fake = FakeAmiServer({})
    await fake.start()
    backend = AsteriskBackend(
        AmiConfig("127.0.0.1", fake.port, "followup", "secret"), OriginatePlan(),
        FakeClock(dt.datetime(2026, 3, 10, tzinfo=dt.UTC)), ivr, "127.0.0.1", 0, Path("/tmp"),
        goodbye=Prompt(Path("/s/sorry.wav"), "sorry"))
    try:
        await backend.start()
        sent = await replay_agi_session(
            "127.0.0.1", backend.fastagi.port,
            AgiRecording.load(FIX / "agi" / "followup_dtmf_record.dialogue.txt"),
            script="followup?attempt=999")
    finally:
        await backend.close()
        await fake.close()
    assert sent == ['STREAM FILE "/s/sorry" ""', "HANGUP"]
    assert backend.fastagi.stats.unknown_attempt == 1


async def test_click_to_call_rings_the_agent_first() -> None:
    fake = FakeAmiServer({})
    await fake.start()
    backend = AsteriskBackend(
        AmiConfig("127.0.0.1", fake.port, "followup", "secret"), OriginatePlan(),
        FakeClock(dt.datetime(2026, 3, 10, tzinfo=dt.UTC)), ivr, "127.0.0.1", 0, Path("/tmp"))
    try:
        await backend.start()
        with pytest.raises(TelephonyError):  # the fake has no scenario: Originate failed
            await backend.telephony.click_to_call("PJSIP/2001", "+8613800138000", "ticket-5",
                                                  "5550100", "Clinic")
        with pytest.raises(ValueError):
            await backend.telephony.click_to_call("PJSIP/2001&PJSIP/2002", "+861380013",
                                                  "t", "5550100")
    finally:
        await backend.close()
        await fake.close()
    sent = fake.originates[0]
    assert sent.get("Channel") == "PJSIP/2001"
    assert sent.get("Context") == "followup-callback"
    assert sent.get("Exten") == "+8613800138000"
    assert sent.get("Async") == "true"
    assert sent.get_all("Variable") == ["FOLLOWUP_TICKET=ticket-5"]
    assert len(fake.originates) == 1


def test_built_from_the_settings() -> None:
    from pydantic import SecretStr

    from core.settings import AsteriskSettings

    backend = AsteriskBackend.from_settings(
        AsteriskSettings(ami_secret=SecretStr("s"), agi_port=4599, trunk="gw",
                         clip_dir="/var/clips"),
        FakeClock(dt.datetime(2026, 3, 10, tzinfo=dt.UTC)), ivr)
    assert backend.fastagi.port == 4599
    assert backend.telephony.client.connected is False
