"""The campaign loop over a fake telephony: caps, retries, stop, one bad call."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from sqlalchemy import func, select

from core.audit import AuditLog
from core.calling_window import CallingRules
from core.clock import AcceleratedClock
from core.enums import CallProgress, DialOutcome, ScriptOutcome, TaskStatus, TicketReason
from core.errors import StoreUnavailable
from core.store.db import Database
from core.store.models import CallAttempt, FollowupTask, Ticket
from dialer.attempt_log import AttemptLog
from dialer.call_plan import CallPlan, ProgressBus, ProgressEvent
from dialer.call_result import CallIvrResult
from dialer.campaign import Alarm, Campaign, CampaignOptions
from dialer.claims import TaskClaimer
from dialer.pacing import Pacer
from dialer.retry_policy import RetryPolicy
from dialer.telephony import CallReport
from recordings.store import RecordingStore
from tests.audit_key import TEST_AUDIT_KEY
from tests.contract.call_support import planner
from tests.contract.test_claims import NOW, TZ, _seed

ALWAYS = CallingRules.from_settings("00:00-24:00", [])


class FakeTelephony:
    """Outcomes by the last digits of the phone; records concurrency and every plan."""

    def __init__(self, clock: AcceleratedClock, plan: dict[str, list[DialOutcome]]) -> None:
        self.clock = clock
        self.plan = plan
        self.active: set[str] = set()
        self.peak = 0
        self.requests: list[CallPlan] = []
        self.two_started = asyncio.Event()
        self.placed = asyncio.Event()  # set on every call placed

    async def until_placed(self, n: int) -> None:
        while len(self.requests) < n:
            self.placed.clear()
            await self.placed.wait()

    async def place(self, call: CallPlan, events: ProgressBus) -> CallReport:
        if call.phone in self.active:
            raise AssertionError(f"two calls at once to {call.phone}")
        self.requests.append(call)
        self.placed.set()
        if len(self.requests) >= 2:
            self.two_started.set()
        self.active.add(call.phone)
        self.peak = max(self.peak, len(self.active))
        try:
            outcomes = self.plan.get(call.phone[-2:], [DialOutcome.ANSWERED])
            n = sum(1 for r in self.requests if r.phone == call.phone) - 1
            outcome = outcomes[min(n, len(outcomes) - 1)]
            if outcome is DialOutcome.ERROR:
                raise RuntimeError("adapter exploded")
            events.publish(ProgressEvent(call.attempt_id, CallProgress.DIALLED,
                                         self.clock.now()))
            await self.clock.sleep(60)
            if outcome is DialOutcome.ANSWERED:
                call.result = CallIvrResult(ScriptOutcome.COMPLETED)
            return CallReport(attempt_id=call.attempt_id, outcome=outcome,
                              dialled=outcome.was_dialled)
        finally:
            self.active.discard(call.phone)


def _campaign(db: Database, tmp_path: Path, telephony: FakeTelephony, clock: AcceleratedClock,
              channels: int) -> tuple[Campaign, TaskClaimer]:
    claimer = TaskClaimer(db, "d1", dt.timedelta(minutes=10), ALWAYS, TZ)
    audit = AuditLog(clock, TEST_AUDIT_KEY)
    log = AttemptLog(db, RetryPolicy(), RecordingStore(tmp_path, clock, audit), "fake")
    pacer = Pacer(channels, 50.0, clock, clock.sleep)
    return Campaign(db, claimer, log, planner(db, log, tmp_path), telephony, pacer, clock,
                    clock.sleep, CampaignOptions(poll_interval_s=5)), claimer


async def test_campaign_works_every_task_to_an_end(db: Database, tmp_path: Path) -> None:
    n = 24
    phones = [{"phone": f"+861380000{i:04d}"} for i in range(n)]
    _seed(db, phones, [{"patient_id": i, "calling_window": "00:00-24:00",
                        "max_attempts": 2} for i in range(1, n + 1)])
    clock = AcceleratedClock(NOW, speed=3000)
    plan = {
        "01": [DialOutcome.BUSY, DialOutcome.ANSWERED],
        "02": [DialOutcome.NO_ANSWER, DialOutcome.NO_ANSWER],
        "03": [DialOutcome.INVALID_NUMBER],
        "04": [DialOutcome.ERROR, DialOutcome.ANSWERED],
    }
    tel = FakeTelephony(clock, plan)
    campaign, claimer = _campaign(db, tmp_path, tel, clock, channels=4)
    stats = await campaign.run(asyncio.Event(), until_idle=True, next_due=claimer.next_due)
    assert tel.peak <= 4
    with db.session() as s:
        by_status = dict(s.execute(select(FollowupTask.status, func.count())
                                   .group_by(FollowupTask.status)).all())
        phone_of = {t.id: t.patient_id for t in s.execute(select(FollowupTask)).scalars()}
        tickets = s.execute(select(Ticket.reason)).scalars().all()
        attempts = s.execute(select(CallAttempt)).scalars().all()
    assert by_status == {TaskStatus.DONE: n - 2, TaskStatus.FAILED: 1, TaskStatus.STOPPED: 1}
    assert sorted(tickets) == sorted([TicketReason.ATTEMPTS_EXHAUSTED,
                                      TicketReason.INVALID_NUMBER])
    assert stats.failed_calls == 1 and stats.completed == n - 2
    # the busy patient was called back no sooner than 15 minutes later
    busy = sorted((a for a in attempts if a.phone.endswith("01")), key=lambda a: a.id)
    assert len(busy) == 2 and busy[1].created_at - busy[0].created_at >= dt.timedelta(minutes=15)
    assert len(phone_of) == n


async def test_stop_lets_calls_in_progress_finish(db: Database, tmp_path: Path) -> None:
    n = 6
    _seed(db, [{"phone": f"+861380000{i:04d}"} for i in range(n)],
          [{"patient_id": i, "calling_window": "00:00-24:00"} for i in range(1, n + 1)])
    clock = AcceleratedClock(NOW, speed=600)
    tel = FakeTelephony(clock, {})
    campaign, _ = _campaign(db, tmp_path, tel, clock, channels=2)
    stop = asyncio.Event()
    runner = asyncio.create_task(campaign.run(stop))
    await tel.two_started.wait()
    stop.set()
    await runner
    with db.session() as s:
        ended = s.execute(select(func.count()).select_from(CallAttempt)
                          .where(CallAttempt.ended_at.is_not(None))).scalar_one()
        claimed = s.execute(select(func.count()).select_from(FollowupTask)
                            .where(FollowupTask.status == TaskStatus.CLAIMED)).scalar_one()
    assert ended == len(tel.requests) >= 2  # every call that started was finished and stored
    assert claimed == 0


class FlakyDatabase(Database):
    """The store going away for a while (a restart): from its `down_at_call`-th use, every
    call raises StoreUnavailable for `outage` on the campaign's clock. Counting uses, not
    clock time, puts the outage mid-campaign however slow the machine is."""

    def __init__(self, url: str, clock: AcceleratedClock, down_at_call: int,
                 outage: dt.timedelta) -> None:
        super().__init__(url)
        self.clock = clock
        self.down_at_call = down_at_call
        self.outage = outage
        self.calls = 0
        self.back_at: dt.datetime | None = None
        self.refused = 0

    async def call(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls == self.down_at_call:
            self.back_at = self.clock.now() + self.outage
        if self.back_at is not None and self.clock.now() < self.back_at:
            self.refused += 1
            raise StoreUnavailable("database unavailable: the server is restarting")
        return await super().call(fn, *args, **kwargs)


async def test_a_store_restart_mid_campaign_strands_nothing(db: Database,
                                                            tmp_path: Path) -> None:
    n = 12
    _seed(db, [{"phone": f"+861390000{i:04d}"} for i in range(n)],
          [{"patient_id": i, "calling_window": "00:00-24:00"} for i in range(1, n + 1)])
    clock = AcceleratedClock(NOW, speed=600)
    # down while the first calls are up: after their claims, plans and attempts
    flaky = FlakyDatabase(db.url, clock, down_at_call=12, outage=dt.timedelta(seconds=200))
    tel = FakeTelephony(clock, {})
    campaign, claimer = _campaign(flaky, tmp_path, tel, clock, channels=3)
    stats = await campaign.run(asyncio.Event(), until_idle=True, next_due=claimer.next_due)
    flaky.dispose()
    assert flaky.refused > 0  # the outage really hit the loop and the calls
    assert stats.alarms == {}  # raised while it lasted, cleared once the store was back
    with db.session() as s:
        by_status = dict(s.execute(select(FollowupTask.status, func.count())
                                   .group_by(FollowupTask.status)).all())
        live = s.execute(select(func.count()).select_from(CallAttempt).where(
            CallAttempt.ended_at.is_(None))).scalar_one()
    assert by_status == {TaskStatus.DONE: n} and live == 0
    assert len(tel.requests) == n  # nobody was called twice


async def test_a_recordings_folder_that_fails_pauses_calling(db: Database,
                                                             tmp_path: Path) -> None:
    """Nothing is dialled while the folder cannot take recordings; a run that should end
    when idle ends with the alarm saying why, and no task is touched."""
    _seed(db, [{"phone": "+8613900000001"}], [{"patient_id": 1, "calling_window": "00:00-24:00"}])
    clock = AcceleratedClock(NOW, speed=600)
    tel = FakeTelephony(clock, {})
    claimer = TaskClaimer(db, "d1", dt.timedelta(minutes=10), ALWAYS, TZ)
    audit = AuditLog(clock, TEST_AUDIT_KEY)
    log = AttemptLog(db, RetryPolicy(), RecordingStore(tmp_path, clock, audit), "fake")
    campaign = Campaign(db, claimer, log, planner(db, log, tmp_path), tel,
                        Pacer(2, 50.0, clock, clock.sleep), clock, clock.sleep,
                        CampaignOptions(poll_interval_s=5),
                        health_checks=(lambda: "/var/rec: only 3 MiB free (needs 64)",))
    stats = await campaign.run(asyncio.Event(), until_idle=True, next_due=claimer.next_due)
    assert tel.requests == [] and stats.claimed == 0
    assert stats.alarms == {Alarm.RECORDINGS: "/var/rec: only 3 MiB free (needs 64)"}
    with db.session() as s:
        assert s.execute(select(FollowupTask.status)).scalar_one() is TaskStatus.PENDING


async def test_a_run_of_failed_calls_pauses_calling_and_raises_one_ticket(
        db: Database, tmp_path: Path) -> None:
    """Five calls in a row the adapter fails: calling pauses (nobody else is dialled during
    the pause), the alarm says why, and one `calling_paused` ticket reaches the worklist,
    due within the hour, on the call that completed the run."""
    n = 8
    phones = [{"phone": f"+861380000{i:04d}"} for i in range(n)]
    _seed(db, phones, [{"patient_id": i, "calling_window": "00:00-24:00"}
                       for i in range(1, n + 1)])
    clock = AcceleratedClock(NOW, speed=600)
    tel = FakeTelephony(clock, {f"{i:02d}": [DialOutcome.ERROR] for i in range(n)})
    claimer = TaskClaimer(db, "d1", dt.timedelta(minutes=10), ALWAYS, TZ)
    audit = AuditLog(clock, TEST_AUDIT_KEY)
    log = AttemptLog(db, RetryPolicy(), RecordingStore(tmp_path, clock, audit), "fake")
    campaign = Campaign(db, claimer, log, planner(db, log, tmp_path), tel,
                        Pacer(1, 50.0, clock, clock.sleep), clock, clock.sleep,
                        CampaignOptions(poll_interval_s=5, max_consecutive_failures=5,
                                        failure_pause_s=3600))
    stop = asyncio.Event()
    runner = asyncio.create_task(campaign.run(stop))
    await tel.until_placed(5)
    paused_at = clock.now()
    await clock.sleep(600)  # ten minutes of the hour's pause
    stop.set()
    stats = await runner
    assert len(tel.requests) == 5, "a call was placed during the pause"
    assert "5 calls in a row failed" in stats.alarms[Alarm.FAILURES]
    with db.session() as s:
        tickets = s.execute(select(Ticket).where(
            Ticket.reason == TicketReason.CALLING_PAUSED)).scalars().all()
        last = s.execute(select(CallAttempt).order_by(CallAttempt.id.desc())).scalars().first()
    assert len(tickets) == 1
    [ticket] = tickets
    assert last is not None and ticket.attempt_id == last.id
    assert "calling paused 60 min" in ticket.summary and "adapter exploded" in ticket.summary
    assert ticket.due_at is not None
    due = ticket.due_at if ticket.due_at.tzinfo else ticket.due_at.replace(tzinfo=dt.UTC)
    assert due - paused_at <= dt.timedelta(hours=1, minutes=1)
