"""The campaign loop: claim due tasks, place their calls under the pacer, record outcomes.

One asyncio loop; every store operation runs in a worker thread. One failing call never
disturbs another: an exception in a call is logged, the attempt is closed as failed, and
the loop goes on. `stop` (SIGTERM) ends the claiming; calls in progress finish.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from core.clock import Clock
from core.enums import DialOutcome, ScriptOutcome, TaskStatus, TicketReason
from core.errors import TemporaryError
from core.store.db import Database
from dialer.attempt_log import AttemptLog, CallSummary
from dialer.call_handler import CallIvrResult
from dialer.claims import ClaimedTask, TaskClaimer
from dialer.pacing import Pacer
from dialer.telephony import CallReport, CallRequest, Telephony

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Summarise = Callable[[CallReport], CallSummary]


@dataclass
class CampaignStats:
    """Live counters for the progress display."""

    claimed: int = 0
    dialled: int = 0
    answered: int = 0
    completed: int = 0
    red_flags: int = 0
    tickets: int = 0
    failed_calls: int = 0
    in_flight: int = 0
    busy_channel_seconds: float = 0.0
    by_outcome: dict[str, int] = field(default_factory=dict)

    def count(self, key: str) -> None:
        self.by_outcome[key] = self.by_outcome.get(key, 0) + 1


@dataclass(frozen=True)
class CampaignOptions:
    caller_id: str = ""
    ring_timeout_s: int = 30
    poll_interval_s: float = 1.0
    max_idle_s: float = 60.0  # the longest an idle loop waits before looking again
    lease_renew_s: float = 60.0


def summarise_report(report: CallReport) -> CallSummary:
    """Turn the telephony report (and its IVR result) into what the store records."""
    ivr = report.ivr
    script: ScriptOutcome | None = ivr.outcome if ivr is not None else None
    full = ivr if isinstance(ivr, CallIvrResult) else None
    if report.outcome is DialOutcome.ANSWERED and script is None:
        script = ScriptOutcome.PARTIAL  # answered but the IVR never ran: call back
    return CallSummary(
        dial=report.outcome, script=script, hangup_cause=report.hangup_cause,
        resume_from=full.resume_from if full else None,
        tickets=full.tickets if full else (),
        opted_out=full.opted_out if full else False, recording=report.recording,
        agent=report.agent.member_name if report.agent else None,
        talk_time_s=report.agent.talk_time_s if report.agent else None,
        error=None if report.outcome_certain else "outcome uncertain: " + ", ".join(
            report.details),
        channel=report.channel or None, uniqueid=report.uniqueid, linkedid=report.linkedid,
        answered_at=report.answered_at)


class Campaign:
    """Works the due tasks until told to stop (or, with `until_idle`, until none are left)."""

    def __init__(self, db: Database, claimer: TaskClaimer, attempts: AttemptLog,
                 telephony: Telephony, pacer: Pacer, clock: Clock, sleep: Sleep,
                 options: CampaignOptions, summarise: Summarise = summarise_report) -> None:
        self._db = db
        self._claimer = claimer
        self._attempts = attempts
        self._telephony = telephony
        self._pacer = pacer
        self._clock = clock
        self._sleep = sleep
        self._options = options
        self._summarise = summarise
        self.stats = CampaignStats()
        self._calls: set[asyncio.Task[None]] = set()
        self._in_flight: dict[int, ClaimedTask] = {}
        self._waiting_for_slot = 0

    async def run(self, stop: asyncio.Event, *, until_idle: bool = False,
                  next_due: Callable[[], dt.datetime | None] | None = None,
                  horizon: dt.datetime | None = None,
                  skip_idle: Callable[[dt.datetime], None] | None = None) -> CampaignStats:
        """The loop. With `until_idle` it ends when no work is left (or none before
        `horizon`); `next_due` says when the next task is due so an idle loop waits until
        then, and a simulation passes `skip_idle` to jump its clock there instead."""
        last_renew = self._clock.now()
        while not stop.is_set():
            # channels free now, less the claimed calls already queued for one
            free = self._pacer.free - self._waiting_for_slot
            claimed: list[ClaimedTask] = []
            if free > 0:
                claimed = await self._db.call(self._claimer.claim, self._clock.now(), free)
            for task in claimed:
                self.stats.claimed += 1
                self._start(task)
            now = self._clock.now()
            if (now - last_renew).total_seconds() >= self._options.lease_renew_s:
                last_renew = now
                await self._db.call(self._claimer.renew, list(self._in_flight), now)
            if claimed and free > len(claimed):
                continue  # there may be more due work right away
            if until_idle and not self._calls:
                due = await self._db.call(next_due) if next_due else None
                if due is None or (horizon is not None and due > horizon):
                    break
                if skip_idle is not None and due > now:
                    skip_idle(due)
                    continue
                wait = max((due - now).total_seconds(), self._options.poll_interval_s)
                await self._wait(stop, wait)
                continue
            wait = self._options.poll_interval_s
            if not claimed and next_due is not None:
                due = await self._db.call(next_due)
                until_due = (due - now).total_seconds() if due else self._options.max_idle_s
                wait = min(max(until_due, self._options.poll_interval_s),
                           self._options.max_idle_s)
            await self._wait(stop, wait)
        if self._calls:
            await asyncio.gather(*self._calls, return_exceptions=True)
        return self.stats

    async def _wait(self, stop: asyncio.Event, seconds: float) -> None:
        """Sleep (on the campaign's clock) but wake early when a call ends or on stop."""
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        stopper = asyncio.ensure_future(stop.wait())
        waiters: set[asyncio.Future[object]] = {sleeper, stopper}  # type: ignore[arg-type]
        if self._calls:
            waiters |= set(self._calls)  # type: ignore[arg-type]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for fut in (sleeper, stopper):
            if not fut.done():
                fut.cancel()
        await asyncio.gather(sleeper, stopper, return_exceptions=True)

    def _start(self, task: ClaimedTask) -> None:
        self._in_flight[task.task_id] = task
        self._waiting_for_slot += 1
        call = asyncio.create_task(self._call(task), name=f"call-task-{task.task_id}")
        self._calls.add(call)
        call.add_done_callback(self._calls.discard)

    async def _call(self, task: ClaimedTask) -> None:
        """Write the attempt, hold a channel only while the call is up, then record how it
        went (the trunk channel is free again as soon as the call has ended)."""
        queued = True
        try:
            attempt_id = await self._db.call(self._attempts.begin, task, self._clock.now())
            request = CallRequest(attempt_id=str(attempt_id), task_id=str(task.task_id),
                                  phone=task.phone, caller_id=self._options.caller_id,
                                  timeout_s=self._options.ring_timeout_s, locale=task.language)
            async with self._pacer.slot():
                self._waiting_for_slot -= 1
                queued = False
                self.stats.in_flight += 1
                started = self._clock.now()
                try:
                    summary = await self._place(request)
                finally:
                    self.stats.in_flight -= 1
                    self.stats.busy_channel_seconds += (
                        self._clock.now() - started).total_seconds()
            status = await self._db.call(self._attempts.finish, attempt_id, summary,
                                             self._clock.now())
            self._tally(summary, status)
        finally:
            if queued:
                self._waiting_for_slot -= 1
            self._in_flight.pop(task.task_id, None)

    async def _place(self, request: CallRequest) -> CallSummary:
        try:
            report = await self._telephony.place(request)
        except TemporaryError as exc:
            log.warning("telephony unavailable for attempt %s: %s", request.attempt_id,
                        exc.message)
            return CallSummary(DialOutcome.FAILED, error=exc.message)
        except Exception as exc:  # one broken call must not stop the campaign
            log.exception("call for attempt %s failed", request.attempt_id)
            self.stats.failed_calls += 1
            return CallSummary(DialOutcome.FAILED, error=f"{type(exc).__name__}: {exc}")
        return self._summarise(report)

    def _tally(self, summary: CallSummary, status: TaskStatus) -> None:
        s = self.stats
        s.count(summary.script.value if summary.script else summary.dial.value)
        if summary.dial.was_dialled:
            s.dialled += 1
        if summary.dial is DialOutcome.ANSWERED:
            s.answered += 1
        if summary.script is ScriptOutcome.COMPLETED or status is TaskStatus.DONE:
            s.completed += 1
        s.tickets += len(summary.tickets) + (1 if status is TaskStatus.FAILED else 0)
        s.red_flags += sum(1 for t in summary.tickets if t.reason is TicketReason.RED_FLAG)
