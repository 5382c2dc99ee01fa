"""The SMPP adapter's link against the real SMPP server (smpp.twisted3, tests/smsc): a
dropped connection is bound again with backoff, and MOs in each data coding are read."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from messaging.gateway import OutgoingSms, SubmitStatus
from messaging.smpp import SmppGateway
from tests.contract.test_sms_gateway_contract import Recorder, smpp_settings
from tests.smsc import Smsc

pytestmark = pytest.mark.smsc


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(250):  # 5 s
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the link did not change in 5 s")


async def test_a_dropped_link_is_bound_again_and_submits_go_on(smsc: Smsc) -> None:
    gateway = SmppGateway(smpp_settings(smsc), response_timeout_s=2, backoff_s=(0.05, 0.2))
    await gateway.start(Recorder())
    try:
        assert gateway.bound
        await asyncio.to_thread(smsc.control, op="drop")
        await _until(lambda: not gateway.bound)  # the adapter notices the drop
        down = await gateway.submit(OutgoingSms(1, "+8613800138000", "hello"))
        assert down.status is SubmitStatus.TEMPORARY
        await _until(lambda: gateway.bound)
        again = await gateway.submit(OutgoingSms(1, "+8613800138000", "hello"))
        assert again.status is SubmitStatus.ACCEPTED
    finally:
        await gateway.close()


@pytest.mark.parametrize(("coding", "text"), [
    ("gsm7", "STOP"), ("latin1", "Désabonner"), ("ucs2", "ＴＤ 退订 😀"),
])
async def test_an_mo_is_decoded_by_its_data_coding(smsc: Smsc, coding: str, text: str) -> None:
    events = Recorder()
    gateway = SmppGateway(smpp_settings(smsc), response_timeout_s=2)
    await gateway.start(events)
    try:
        await asyncio.to_thread(smsc.control, op="mo", sender="8613700000001", text=text,
                                coding=coding)
        await events.until(lambda: bool(events.inbound_messages))
        assert [m.body for m in events.inbound_messages] == [text]
    finally:
        await gateway.close()


async def test_every_report_and_mo_is_acknowledged_to_the_smsc(smsc: Smsc) -> None:
    """The server matches each deliver_sm_resp to its deliver_sm by sequence number."""
    events = Recorder()
    gateway = SmppGateway(smpp_settings(smsc), response_timeout_s=2)
    await gateway.start(events)
    try:
        before = await asyncio.to_thread(smsc.control, op="stats")
        result = await gateway.submit(OutgoingSms(1, "+8613800138000", "随" * 100))
        await asyncio.to_thread(smsc.control, op="mo", sender="8613700000001", text="TD")
        await events.until(lambda: len(events.reports) == 2 and bool(events.inbound_messages))
        assert {r.gateway_message_id for r in events.reports} == set(result.part_ids)
        stats: dict[str, int] = {}
        for _ in range(100):
            stats = await asyncio.to_thread(smsc.control, op="stats")
            if stats["acked"] - before["acked"] >= 3:
                break
            await asyncio.sleep(0.02)
        assert stats["acked"] - before["acked"] == stats["reports"] - before["reports"] == 3
    finally:
        await gateway.close()
