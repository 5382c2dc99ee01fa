"""One engine, several Asterisk servers and several trunks, against fake Asterisks that
replay the recorded AMI and FastAGI traffic: calls spread by free capacity, a lost server
takes no new calls, a failed trunk hands the call to the next."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from core.clock import FakeClock
from core.enums import CallProgress, DialOutcome
from core.errors import TelephonyUnavailable
from dialer.asterisk.ami import AmiConfig
from dialer.asterisk.backend import AsteriskBackend
from dialer.asterisk.fake_ami import AmiScenario, FakeAmiServer
from dialer.asterisk.servers import ServerLink, ServerPool
from dialer.asterisk.telephony import AsteriskTelephony, OriginatePlan
from dialer.asterisk.testing import AgiRecording
from dialer.call_plan import ProgressBus
from dialer.trunks import Trunk, TrunkLines
from tests.unit.asterisk.test_asterisk_backend import FIX, TinyIvr, call_plan

CLOCK = FakeClock(dt.datetime(2026, 12, 7, 9, tzinfo=dt.UTC))
ANSWERED = AmiScenario.load(FIX / "ami" / "originate_answered_ivr.dialogue.txt")
NO_CHANNEL = AmiScenario.load(FIX / "ami" / "originate_unknown_endpoint.dialogue.txt")
BUSY = AmiScenario.load(FIX / "ami" / "originate_busy.dialogue.txt")
NO_ANSWER = AmiScenario.load(FIX / "ami" / "originate_noanswer.dialogue.txt")
IVR = {"originate_answered_ivr": AgiRecording.load(
    FIX / "agi" / "followup_dtmf_record.dialogue.txt")}


def fake(scenarios: dict[str, AmiScenario], time_scale: float = 0.0) -> FakeAmiServer:
    return FakeAmiServer(scenarios, agi_dialogues=IVR, time_scale=time_scale)


async def started(fakes: list[FakeAmiServer], trunks: list[Trunk], cap: int = 10
                  ) -> AsteriskBackend:
    """The fakes started, and a backend over them (server `ast1` is the first fake)."""
    for f in fakes:
        await f.start()
    servers = [ServerLink(f"ast{i + 1}", AsteriskTelephony(
        AmiConfig("127.0.0.1", f.port, "followup", "secret", action_timeout_s=3,
                  backoff_initial_s=0.05, backoff_max_s=0.2),
        CLOCK, OriginatePlan(trunk=trunks[0])), cap) for i, f in enumerate(fakes)]
    ast = AsteriskBackend(ServerPool(servers, recheck_s=0.05),
                          TrunkLines(trunks, CLOCK, asyncio.sleep), CLOCK, TinyIvr(),
                          "127.0.0.1", 0, Path("/tmp"))
    await ast.start()
    for f in fakes:
        f.agi_port = ast.fastagi.port
    return ast


async def test_a_trunk_that_fails_hands_the_call_to_the_next_one() -> None:
    ami = fake({"@gw1": NO_CHANNEL, "@gw2": ANSWERED})
    ast = await started([ami], [Trunk("gw1"), Trunk("gw2")])
    seen: list[CallProgress] = []
    events = ProgressBus()
    events.subscribe(lambda e: seen.append(e.progress))
    try:
        report = await asyncio.wait_for(ast.place(call_plan(1, "1001"), events), 10)
    finally:
        await ast.close()
        await ami.close()
    assert [o.get("Channel") for o in ami.originates] == ["PJSIP/1001@gw1", "PJSIP/1001@gw2"]
    assert (report.outcome, report.trunk, report.server) == (DialOutcome.ANSWERED, "gw2",
                                                             "ast1")
    assert seen[:2] == [CallProgress.DIALLED, CallProgress.RINGING] or \
        seen[:2] == [CallProgress.DIALLED, CallProgress.ANSWERED]


async def test_every_trunk_failing_is_failed_not_the_patients_attempt() -> None:
    ami = fake({"@gw": NO_CHANNEL})
    ast = await started([ami], [Trunk("gw1"), Trunk("gw2")])
    try:
        report = await asyncio.wait_for(ast.place(call_plan(1, "1001"), ProgressBus()), 10)
    finally:
        await ast.close()
        await ami.close()
    assert (report.outcome, report.dialled) == (DialOutcome.FAILED, False)
    assert [d.split(":")[0] for d in report.details] == ["trunk gw1 on ast1",
                                                         "trunk gw2 on ast1"]


async def test_a_busy_line_is_the_patients_and_stays_on_its_trunk() -> None:
    ami = fake({"@gw1": BUSY, "@gw2": ANSWERED})
    ast = await started([ami], [Trunk("gw1"), Trunk("gw2")])
    try:
        report = await asyncio.wait_for(ast.place(call_plan(1, "1002"), ProgressBus()), 10)
    finally:
        await ast.close()
        await ami.close()
    assert (report.outcome, report.trunk) == (DialOutcome.BUSY, "gw1")
    assert len(ami.originates) == 1


async def test_a_number_no_trunk_takes_is_invalid_without_a_dial() -> None:
    ami = fake({})
    ast = await started([ami], [Trunk("mobile", prefixes=("1",))])
    try:
        report = await ast.place(call_plan(1, "+4930123456"), ProgressBus())
    finally:
        await ast.close()
        await ami.close()
    assert (report.outcome, report.dialled) == (DialOutcome.INVALID_NUMBER, False)
    assert ami.originates == []


async def test_calls_spread_by_free_capacity_and_avoid_a_lost_server() -> None:
    # unanswered calls ring a while (the recorded 8 s, at a twentieth): four at once on
    # two servers of two channels each go two and two
    one, two = fake({"@gw": NO_ANSWER}, 0.05), fake({"@gw": NO_ANSWER}, 0.05)
    ast = await started([one, two], [Trunk("gw", calls_per_second=1000)], cap=2)
    try:
        reports = await asyncio.wait_for(asyncio.gather(
            *(ast.place(call_plan(i, f"100{i}"), ProgressBus()) for i in range(1, 5))), 20)
        assert sorted(r.server or "" for r in reports) == ["ast1", "ast1", "ast2", "ast2"]
        assert [s.peak_in_use for s in ast.servers.servers] == [2, 2]

        await one.close()  # server 1 goes away: its AMI link drops, it takes nothing new
        for _ in range(100):
            if not ast.servers.servers[0].telephony.connected:
                break
            await asyncio.sleep(0.02)
        reports = await asyncio.wait_for(asyncio.gather(
            *(ast.place(call_plan(i, f"100{i}"), ProgressBus()) for i in range(5, 8))), 20)
        assert [r.server for r in reports] == ["ast2"] * 3
        assert [r.outcome for r in reports] == [DialOutcome.NO_ANSWER] * 3

        await two.close()  # no server left: the attempt did not happen
        for _ in range(100):
            if not ast.servers.servers[1].telephony.connected:
                break
            await asyncio.sleep(0.02)
        with pytest.raises(TelephonyUnavailable):
            await ast.place(call_plan(9, "1009"), ProgressBus())
    finally:
        await ast.close()
        await one.close()
        await two.close()


async def test_the_engine_starts_with_one_server_down_and_uses_it_once_it_is_up() -> None:
    up = fake({"@gw": BUSY})
    await up.start()
    down_port = up.port + 1 if up.port < 65535 else up.port - 1
    servers = [ServerLink("ast1", AsteriskTelephony(
        AmiConfig("127.0.0.1", down_port, "followup", "secret", connect_timeout_s=0.2,
                  backoff_initial_s=0.05, backoff_max_s=0.1), CLOCK,
        OriginatePlan(trunk=Trunk("gw"))), 5),
        ServerLink("ast2", AsteriskTelephony(
            AmiConfig("127.0.0.1", up.port, "followup", "secret"), CLOCK,
            OriginatePlan(trunk=Trunk("gw"))), 5)]
    pool = ServerPool(servers)
    try:
        await pool.start()
        assert [s.telephony.connected for s in servers] == [False, True]
        async with pool.line() as server:
            assert server.name == "ast2"
    finally:
        await pool.close()
        await up.close()
