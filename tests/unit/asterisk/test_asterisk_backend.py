"""AsteriskBackend end to end: AMI originate and the FastAGI IVR of the same call, both
halves played by a fake Asterisk from the recordings; click-to-call."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from core.clock import FakeClock
from core.enums import CallProgress, DialOutcome, ScriptOutcome
from dialer.asterisk.ami import AmiConfig
from dialer.asterisk.backend import AsteriskBackend
from dialer.asterisk.fake_ami import AmiScenario, FakeAmiServer
from dialer.asterisk.servers import ServerLink, ServerPool
from dialer.asterisk.telephony import AsteriskTelephony, OriginatePlan
from dialer.asterisk.testing import AgiRecording, replay_agi_session
from dialer.call_plan import AttemptId, CallPlan, ProgressBus
from dialer.call_result import CallIvrResult, combine
from dialer.claims import ClaimedTask
from dialer.telephony import CallReport
from dialer.trunks import Trunk, TrunkLines
from ivr.call_context import CallContext
from ivr.channel import Channel, Prompt
from ivr.prompts import PromptContext
from ivr.results import ScriptResult

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "asterisk"
PAIRS = {"1001": ("originate_answered_ivr", "followup_dtmf_record"),
         "1007": ("originate_ivr_to_queue", "followup_nurse_to_queue"),
         "1006": ("originate_baresip_hangup_midprompt", "followup_hangup_midprompt")}
HELLO = Prompt(Path("/s/hello.wav"), "hello")


class TinyIvr:
    """A tiny IVR: greet, ask one key, hand 2 to the agents; `digits` keeps what it got."""

    def __init__(self) -> None:
        self.digits: list[str] = []
        self.handoffs: list[CallPlan] = []

    async def run(self, plan: CallPlan, channel: Channel) -> CallIvrResult:
        await channel.play(HELLO)
        if channel.hung_up:
            return self._done(plan, ScriptOutcome.PARTIAL)
        got = await channel.collect_digits(HELLO, 1, 8.0)
        self.digits.append(got.digits)
        if got.digits == "2" and await channel.transfer(
                "followup-agents", {"FOLLOWUP_SUMMARY": "asked for a person"}):
            result = ScriptResult("s", 1, "en-US", ScriptOutcome.TRANSFERRED,
                                  transferred_to="followup-agents")
            plan.result = combine([result])
            return plan.result
        await channel.hangup()
        return self._done(plan, ScriptOutcome.COMPLETED if got.digits else
                          ScriptOutcome.PARTIAL)

    @staticmethod
    def _done(plan: CallPlan, outcome: ScriptOutcome) -> CallIvrResult:
        plan.result = CallIvrResult(outcome)
        return plan.result

    async def handoff_unanswered(self, plan: CallPlan, channel: Channel) -> None:
        self.handoffs.append(plan)
        await channel.play(HELLO)
        await channel.hangup()


def call_plan(attempt_id: int, phone: str) -> CallPlan:
    task = ClaimedTask(task_id=1, patient_id=1, encounter_id=1, department_id=1, phone=phone,
                       language="en-US", timezone="UTC", call_scripts=(("s", 1),),
                       attempts=0, max_attempts=3, priority=50)
    return CallPlan(AttemptId(attempt_id), task, phone, (), CallContext(PromptContext(), None),
                    caller_id="5550100")


def one_server_backend(ami: AmiConfig, trunk: Trunk, goodbye: Prompt | None = None
                       ) -> AsteriskBackend:
    clock = FakeClock(dt.datetime(2026, 3, 10, tzinfo=dt.UTC))
    server = ServerLink("asterisk", AsteriskTelephony(ami, clock, OriginatePlan(trunk=trunk)),
                        max_channels=10)
    return AsteriskBackend(ServerPool([server]), TrunkLines([trunk], clock, asyncio.sleep),
                           clock, TinyIvr(), "127.0.0.1", 0, Path("/tmp"), goodbye=goodbye)


async def run_call(number: str) -> tuple[CallReport, CallPlan, FakeAmiServer]:
    ami_name, agi_name = PAIRS[number]
    fake = FakeAmiServer(
        {f"PJSIP/{number}": AmiScenario.load(FIX / "ami" / f"{ami_name}.dialogue.txt")},
        agi_dialogues={ami_name: AgiRecording.load(FIX / "agi" / f"{agi_name}.dialogue.txt")})
    await fake.start()
    backend = one_server_backend(
        AmiConfig("127.0.0.1", fake.port, "followup", "secret", action_timeout_s=3),
        Trunk("carrier", "PJSIP/{number}"))
    plan = call_plan(777, number)
    events = ProgressBus()
    seen: list[CallProgress] = []
    events.subscribe(lambda e: seen.append(e.progress))
    try:
        await backend.start()
        fake.agi_port = backend.fastagi.port
        report = await asyncio.wait_for(backend.place(plan, events), 10)
    finally:
        await backend.close()
        await fake.close()
    assert seen[:3] == [CallProgress.DIALLED, CallProgress.RINGING, CallProgress.ANSWERED] \
        or seen[:2] == [CallProgress.DIALLED, CallProgress.ANSWERED], seen
    return report, plan, fake


async def test_answered_call_carries_the_ivr_result() -> None:
    report, plan, fake = await run_call("1001")
    assert report.outcome is DialOutcome.ANSWERED
    assert plan.result is not None and plan.result.outcome is ScriptOutcome.COMPLETED
    assert fake.agi_sessions[0][:2] == ['STREAM FILE "/s/hello" ""',
                                        'GET DATA "/s/hello" "8000" "1"']
    assert report.recording is not None


async def test_key_two_goes_to_the_agents_queue_and_the_agent_is_attached() -> None:
    report, plan, fake = await run_call("1007")
    assert plan.result is not None and plan.result.outcome is ScriptOutcome.TRANSFERRED
    assert fake.agi_sessions[0][-1] == 'SET VARIABLE "FOLLOWUP_TRANSFER" "followup-agents"'
    assert report.queue == "followup-agents"
    assert report.agent is not None and report.agent.member_name == "Agent 2001"
    assert report.agent.talk_time_s == 10


async def test_hangup_mid_prompt_reports_answered_with_a_partial_ivr() -> None:
    report, plan, fake = await run_call("1006")
    assert report.outcome is DialOutcome.ANSWERED
    assert plan.result is not None and plan.result.outcome is ScriptOutcome.PARTIAL
    # the recorded -1 is checked with CHANNEL STATUS (511 after the HANGUP line): gone
    assert fake.agi_sessions == [['STREAM FILE "/s/hello" ""', "CHANNEL STATUS"]]


async def test_a_session_for_an_attempt_not_in_flight_is_ended_politely() -> None:
    fake = FakeAmiServer({})
    await fake.start()
    backend = one_server_backend(
        AmiConfig("127.0.0.1", fake.port, "followup", "secret"), Trunk("carrier"),
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


def test_built_from_the_settings() -> None:
    from pydantic import SecretStr

    from core.settings import AsteriskSettings

    backend = AsteriskBackend.from_settings(
        AsteriskSettings(ami_secret=SecretStr("s"), agi_port=4599, trunk="gw",
                         clip_dir="/var/clips"),
        FakeClock(dt.datetime(2026, 3, 10, tzinfo=dt.UTC)), TinyIvr(), max_channels=7,
        calls_per_second=2)
    assert backend.fastagi.port == 4599
    [server] = backend.servers.servers
    assert (server.name, server.max_channels, server.telephony.connected) == (
        "asterisk", 7, False)
    [trunk] = backend.trunks.trunks
    assert (trunk.name, trunk.max_channels, trunk.calls_per_second) == ("gw", 7, 2)
