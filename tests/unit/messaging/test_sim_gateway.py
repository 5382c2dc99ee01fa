"""The sim gateway keeps a true record of what it did (tests compare the store with it)."""

from __future__ import annotations

import asyncio

from messaging.gateway import DeliveryReport, InboundSms, OutgoingSms, SubmitStatus
from messaging.sim import SimAction, SimGateway


class _Events:
    def __init__(self) -> None:
        self.items: list[DeliveryReport | InboundSms] = []

    def delivery_report(self, report: DeliveryReport) -> None:
        self.items.append(report)

    def inbound(self, message: InboundSms) -> None:
        self.items.append(message)


async def test_actions_record_submits_refusals_reports_and_mos() -> None:
    sim = SimGateway(report_delay_s=0)
    events = _Events()
    await sim.start(events)
    sim.throttle(1)
    refused = await sim.submit(OutgoingSms(7, "+8613800138000", "hi"))
    taken = await sim.submit(OutgoingSms(7, "+8613800138000", "随" * 71))
    sim.inject_mo("8613800138000", "TD")
    await asyncio.sleep(0.01)
    assert refused.status is SubmitStatus.TEMPORARY
    assert taken.part_ids == ("sim-1", "sim-2")
    assert sim.actions == [
        SimAction("refused", 7, "+8613800138000", detail="ESME_RTHROTTLED"),
        SimAction("submitted", 7, "+8613800138000", ("sim-1", "sim-2")),
        SimAction("inbound", to="8613800138000", detail="TD"),
        SimAction("report", part_ids=("sim-1",), detail="DELIVRD"),
        SimAction("report", part_ids=("sim-2",), detail="DELIVRD"),
    ]
    assert [type(item).__name__ for item in events.items] == [
        "InboundSms", "DeliveryReport", "DeliveryReport"]


async def test_no_report_arrives_after_close() -> None:
    sim = SimGateway(report_delay_s=0.01)
    events = _Events()
    await sim.start(events)
    await sim.submit(OutgoingSms(1, "+8613800138000", "hi"))
    await sim.close()
    await asyncio.sleep(0.03)
    assert events.items == []
    assert [a.kind for a in sim.actions] == ["submitted"]
