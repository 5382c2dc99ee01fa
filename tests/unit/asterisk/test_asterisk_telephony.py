"""The real AMI client and AsteriskTelephony over a socket, against a fake Asterisk that
replays the recorded streams; including a link dropped mid-campaign."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.clock import FakeClock
from core.enums import DialOutcome
from core.errors import TelephonyUnavailable
from dialer.asterisk.ami import AmiAuthError, AmiConfig
from dialer.asterisk.fake_ami import AmiScenario, FakeAmiServer
from dialer.asterisk.telephony import AsteriskTelephony, OriginatePlan, caller_id
from dialer.call_plan import CallPlan, ProgressBus
from dialer.telephony import CallReport
from dialer.trunks import Trunk
from tests.unit.asterisk.test_asterisk_backend import call_plan

AMI = Path(__file__).resolve().parents[2] / "fixtures" / "asterisk" / "ami"
CASES = {
    "1001": "originate_answered_ivr", "1002": "originate_busy", "1003": "originate_noanswer",
    "1005": "originate_unreachable", "1007": "originate_ivr_to_queue",
    "1006": "originate_baresip_hangup_midprompt",
}
EXPECTED = {
    "1001": DialOutcome.ANSWERED, "1002": DialOutcome.BUSY, "1003": DialOutcome.NO_ANSWER,
    "1005": DialOutcome.UNREACHABLE, "1007": DialOutcome.ANSWERED,
    "1006": DialOutcome.ANSWERED, "9999": DialOutcome.INVALID_NUMBER,
}


def scenarios() -> dict[str, AmiScenario]:
    return {f"PJSIP/{n}": AmiScenario.load(AMI / f"{name}.dialogue.txt")
            for n, name in CASES.items()}


@pytest.fixture
async def fake() -> AsyncIterator[FakeAmiServer]:
    server = FakeAmiServer(scenarios(), AmiScenario.load(
        AMI / "originate_unknown_endpoint.dialogue.txt"))
    await server.start()
    yield server
    await server.close()


def config(port: int, secret: str = "secret") -> AmiConfig:
    return AmiConfig("127.0.0.1", port, "followup", secret, connect_timeout_s=2,
                     action_timeout_s=3, ping_interval_s=0.5, backoff_initial_s=0.05,
                     backoff_max_s=0.2)


def request(number: str, attempt: int) -> CallPlan:
    plan = call_plan(attempt, number)
    plan.caller_name = "Clinic"
    return plan


async def place(tel: AsteriskTelephony, plan: CallPlan) -> CallReport:
    return await tel.place(plan, ProgressBus())


async def telephony(fake: FakeAmiServer) -> AsteriskTelephony:
    tel = AsteriskTelephony(config(fake.port), FakeClock(dt.datetime(2026, 3, 10, tzinfo=dt.UTC)),
                            OriginatePlan(trunk=Trunk("carrier", "PJSIP/{number}")))
    await tel.start()
    return tel


@pytest.mark.parametrize("number", sorted(EXPECTED))
async def test_each_recorded_case_through_the_real_client(fake: FakeAmiServer,
                                                          number: str) -> None:
    tel = await telephony(fake)
    try:
        report = await asyncio.wait_for(place(tel, request(number, int(number))), 10)
    finally:
        await tel.close()
    assert report.outcome is EXPECTED[number]
    assert report.dialled is (number != "9999")
    assert report.outcome_certain
    sent = fake.originates[0]
    assert sent.get("Async") == "true"
    assert sent.get("Channel") == f"PJSIP/{number}"
    assert f"FOLLOWUP_ATTEMPT={number}" in sent.get_all("Variable")
    assert sent.get("CallerID") == '"Clinic" <5550100>'
    assert sent.get("Timeout") == "30000"


async def test_an_answered_call_files_its_recording(fake: FakeAmiServer) -> None:
    tel = await telephony(fake)
    try:
        report = await asyncio.wait_for(place(tel, request("1001", 1001)), 10)
    finally:
        await tel.close()
    assert report.recording is not None and report.recording.suffix == ".wav"


async def test_a_number_the_trunk_cannot_dial_is_an_outcome(fake: FakeAmiServer) -> None:
    tel = await telephony(fake)
    try:
        report = await place(tel, request("1002&PJSIP/2001", 5))
    finally:
        await tel.close()
    assert report.outcome is DialOutcome.INVALID_NUMBER and not report.dialled
    assert fake.originates == []


async def test_concurrent_calls_are_correlated_not_ordered(fake: FakeAmiServer) -> None:
    fake.time_scale = 0.01
    tel = await telephony(fake)
    numbers = ["1001", "1002", "1003", "1005", "9999", "1002", "1007"]
    try:
        reports = await asyncio.wait_for(asyncio.gather(*(
            place(tel, request(n, 500 + i)) for i, n in enumerate(numbers))), 15)
    finally:
        await tel.close()
    assert [r.outcome for r in reports] == [EXPECTED[n] for n in numbers]
    assert [r.attempt_id for r in reports] == [500 + i for i in range(len(numbers))]


async def test_refused_login_is_an_auth_error(fake: FakeAmiServer) -> None:
    tel = AsteriskTelephony(config(fake.port, secret="wrong"),
                            FakeClock(dt.datetime(2026, 3, 10, tzinfo=dt.UTC)))
    with pytest.raises(AmiAuthError):
        await tel.start()


async def test_place_while_disconnected_raises_before_sending(fake: FakeAmiServer) -> None:
    tel = await telephony(fake)
    try:
        fake.drop_connections()
        await asyncio.sleep(0.01)
        with pytest.raises(TelephonyUnavailable):
            await place(tel, request("1002", 601))
        assert fake.originates == []
        assert await tel.client.wait_connected(3)
        report = await asyncio.wait_for(place(tel, request("1002", 602)), 5)
        assert report.outcome is DialOutcome.BUSY
    finally:
        await tel.close()


async def test_dropped_link_mid_campaign_loses_no_call_and_counts_none_twice(
        fake: FakeAmiServer, caplog: pytest.LogCaptureFixture) -> None:
    fake.time_scale = 0.06  # noanswer rings 0.48 s, the answered IVR call lasts ~2 s
    tel = await telephony(fake)
    numbers = ["1001", "1003", "1005", "1007", "1002", "1006"]
    try:
        with caplog.at_level(logging.INFO):
            tasks = [asyncio.create_task(place(tel, request(n, 700 + i)))
                     for i, n in enumerate(numbers)]
            await asyncio.sleep(0.1)  # every call is ringing or in its IVR
            assert len(fake.originates) == len(numbers)
            fake.drop_connections()
            reports: list[CallReport] = await asyncio.wait_for(asyncio.gather(*tasks), 15)
    finally:
        await tel.close()
    assert tel.client.connections == 2
    # every attempt reported exactly once, and nothing was originated twice
    assert sorted(r.attempt_id for r in reports) == [700 + i for i in range(6)]
    assert len(fake.originates) == len(numbers)
    assert fake.actions.count("coreshowchannels") == 1
    by_number = {n: r for n, r in zip(numbers, reports, strict=True)}
    # calls still alive at the reconnect were adopted and finished from live events
    for n in ("1001", "1003", "1007"):
        assert by_number[n].outcome is EXPECTED[n], n
        assert by_number[n].outcome_certain, n
    # busy ended before the drop; it was never in doubt
    assert by_number["1002"].outcome is DialOutcome.BUSY
    assert all(r.dialled for r in reports)
    assert tel.in_flight == frozenset()
    assert "AMI reconnected" in caplog.text


def test_caller_id_cannot_inject_headers_or_quotes() -> None:
    assert caller_id('Clinic "A" <x>\r\nAction: Command', "5550100") == \
        '"Clinic A xAction: Command" <5550100>'
    with pytest.raises(ValueError):
        caller_id("x", "555\r\n")
    with pytest.raises(ValueError):
        Trunk("carrier").dial_string("1002&PJSIP/2001")


async def test_a_refused_rebuild_keeps_following_live_events(
        fake: FakeAmiServer, caplog: pytest.LogCaptureFixture) -> None:
    fake.time_scale = 0.06  # the no-answer call rings 0.48 s
    fake.denied_actions = {"coreshowchannels"}  # an AMI user without `reporting`
    tel = await telephony(fake)
    try:
        with caplog.at_level(logging.ERROR):
            task = asyncio.create_task(place(tel, request("1003", 801)))
            await asyncio.sleep(0.1)
            fake.drop_connections()
            report = await asyncio.wait_for(task, 10)
    finally:
        await tel.close()
    assert report.outcome is DialOutcome.NO_ANSWER
    assert tel.client.connections == 2
    assert "cannot rebuild calls after the AMI reconnect" in caplog.text


async def test_without_a_configured_caller_id_the_header_is_left_out(
        fake: FakeAmiServer) -> None:
    tel = await telephony(fake)
    try:
        call = request("1002", 901)
        call.caller_id = ""
        report = await asyncio.wait_for(place(tel, call), 5)
    finally:
        await tel.close()
    assert report.outcome is DialOutcome.BUSY
    assert fake.originates[0].get("CallerID") is None
