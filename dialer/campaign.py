"""The campaign loop: claim due tasks, plan and place their calls under the pacer, record
outcomes, and keep going through faults.

One asyncio loop; every store operation runs in a worker thread. Faults are outcomes,
never strandings:
- the store's temporary errors (a restart, a killed connection) are retried with backoff;
  while the store is away no new call is placed, and the calls in progress finish and are
  settled once it is back;
- a call's outcome write is retried until it lands; an attempt is released (its lease left
  to expire and be reclaimed) only when even that is impossible;
- every live dialer reclaims expired leases periodically, not only at start;
- a recordings folder that fails or fills, or a run of failed calls, pauses calling with an
  alarm (`CampaignStats.alarms`) instead of failing patients' calls;
- a configuration error stops the campaign with its one-line message.
`stop` (SIGTERM) ends the claiming; calls in progress finish and are settled. A pause from
the console or the CLI (`core.campaign_holds`) is obeyed at the next claim; while one is in
force the loop looks again every `hold_poll_s`, so a resume is obeyed as promptly.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import ParamSpec, TypeVar

from core.clock import Clock
from core.enums import CallProgress, DialOutcome, ScriptOutcome, TaskStatus, TicketReason
from core.errors import ConfigError, TemporaryError
from core.store.db import Database
from core.ticket_texts import TicketText, ticket_text
from dialer.attempt_events import AttemptRecorder
from dialer.attempt_log import AttemptLog, CallSummary, FinishResult
from dialer.call_plan import AttemptId, CallPlan, ProgressBus, ProgressEvent
from dialer.call_planner import CallPlanner, PreparedCall
from dialer.call_summary import summarise_report
from dialer.claims import ClaimedTask, TaskClaimer
from dialer.pacing import Pacer
from dialer.spool_sweep import SpoolSweep
from dialer.telephony import Telephony
from ivr.results import TicketRequest

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")
Sleep = Callable[[float], Awaitable[None]]
HealthCheck = Callable[[], str | None]


class Alarm(StrEnum):
    """Why calling is paused: each alarm holds calling while it is raised."""

    STORE = "store_unavailable"
    RECORDINGS = "recordings_folder"
    FAILURES = "consecutive_failures"


@dataclass
class CampaignStats:
    """Live counters for the progress display and the wallboard."""

    claimed: int = 0
    dialled: int = 0
    answered: int = 0
    completed: int = 0
    red_flags: int = 0
    tickets: int = 0
    failed_calls: int = 0
    in_flight: int = 0
    reclaimed: int = 0
    busy_channel_seconds: float = 0.0
    by_outcome: dict[str, int] = field(default_factory=dict)
    alarms: dict[Alarm, str] = field(default_factory=dict)

    def count(self, key: str) -> None:
        self.by_outcome[key] = self.by_outcome.get(key, 0) + 1


@dataclass(frozen=True)
class CampaignOptions:
    poll_interval_s: float = 1.0
    max_idle_s: float = 60.0  # the longest an idle loop waits before looking again
    lease_renew_s: float = 60.0
    reclaim_interval_s: float = 60.0
    reclaim_grace_s: float = 30.0  # an expired lease is taken back this long after expiry
    store_backoff_max_s: float = 30.0
    settle_after_stop_s: float = 120.0  # how long outcome writes are retried after stop
    max_consecutive_failures: int = 5  # then calling pauses for `failure_pause_s`
    failure_pause_s: float = 300.0
    health_interval_s: float = 30.0
    hold_poll_s: float = 2.0  # while a pause is in force, how often a resume is looked for
    staff_language: str = "en-US"  # the language of the tickets the campaign raises


@dataclass(frozen=True)
class _Opened:
    """A claimed task made ready to call: what `CallPlanner.prepare` read (None, and
    `failure` why, when it could not), and the attempt written (None: the task was closed
    because earlier calls left nothing to ask, or the patient has a live call elsewhere)."""

    prepared: PreparedCall | None
    failure: Exception | None
    attempt_id: AttemptId | None
    closed: bool = False


class Campaign:
    """Works the due tasks until told to stop (or, with `until_idle`, until none are left)."""

    def __init__(self, db: Database, claimer: TaskClaimer, attempts: AttemptLog,
                 planner: CallPlanner, telephony: Telephony, pacer: Pacer, clock: Clock,
                 sleep: Sleep, options: CampaignOptions,
                 health_checks: tuple[HealthCheck, ...] = (),
                 spool_sweep: Callable[[], SpoolSweep] | None = None,
                 events: ProgressBus | None = None) -> None:
        self._db = db
        self._claimer = claimer
        self._attempts = attempts
        self._planner = planner
        self._telephony = telephony
        self._pacer = pacer
        self._clock = clock
        self._sleep = sleep
        self._options = options
        self._health_checks = health_checks
        self._spool_sweep = spool_sweep
        self.events = events or ProgressBus()
        self._recorder = AttemptRecorder(db, attempts)
        self.events.subscribe(self._recorder)
        self.events.subscribe(self._count_progress)
        self.stats = CampaignStats()
        self._calls: set[asyncio.Task[None]] = set()
        # set when a call ends (its channel is free): the loop waits on this one event,
        # not on every call's task (waiting on 200 tasks costs 200 callbacks per wake)
        self._call_ended = asyncio.Event()
        self._in_flight: dict[int, AttemptId | None] = {}  # task id -> attempt (once begun)
        self._waiting_for_slot = 0
        self._settle_deadline: dt.datetime | None = None
        self._failures = 0
        self._paused_until: dt.datetime | None = None
        # True: the first health check sweeps the spool. An earlier dialer (or this one's
        # earlier incarnation) may have left files there and died before filing them; no
        # alarm would ever make this one look.
        self._spooled = True
        self._fatal: ConfigError | None = None

    # -- the loop -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, until_idle: bool = False,
                  next_due: Callable[[], dt.datetime | None] | None = None,
                  horizon: dt.datetime | None = None,
                  skip_idle: Callable[[dt.datetime], None] | None = None) -> CampaignStats:
        """The loop. With `until_idle` it ends when no work is left (or none before
        `horizon`), or when the recordings folder stops taking files (the alarm stays in
        the stats); `next_due` says when the next task is due so an idle loop waits until
        then, and a simulation passes `skip_idle` to jump its clock there instead.
        Raises `ConfigError` when a call found the configuration unusable."""
        now = self._clock.now()
        last_renew = last_reclaim = last_health = now
        await self._check_health()
        while not stop.is_set() and self._fatal is None:
            now = self._clock.now()
            if (now - last_health).total_seconds() >= self._options.health_interval_s \
                    or self.stats.alarms:
                last_health = now
                await self._check_health()
            claimed: list[ClaimedTask] = []
            free = self._pacer.free - self._waiting_for_slot
            if free > 0 and not self._paused(now):
                claimed = await self._store_step(self._claimer.claim, now, free) or []
            for task in claimed:
                self.stats.claimed += 1
                self._start(task)
            if (now - last_renew).total_seconds() >= self._options.lease_renew_s and \
                    await self._store_step(self._claimer.renew, list(self._in_flight),
                                           now) is not None:
                last_renew = now
            if (now - last_reclaim).total_seconds() >= self._options.reclaim_interval_s:
                last_reclaim = now
                await self._reclaim(now)
            if claimed and free > len(claimed):
                continue  # there may be more due work right away
            if Alarm.STORE in self.stats.alarms:
                await self._wait(stop, self._store_backoff())
                continue
            if until_idle and not self._calls:
                if Alarm.RECORDINGS in self.stats.alarms:
                    break  # nothing more can be recorded: stop, the alarm says why
                due = await self._store_step(next_due) if next_due else None
                if Alarm.STORE in self.stats.alarms:
                    continue
                if due is None or (horizon is not None and due > horizon):
                    break
                if skip_idle is not None and due > now:
                    skip_idle(due)
                    continue
                wait = max((due - now).total_seconds(), self._options.poll_interval_s)
                await self._wait(stop, wait)
                continue
            wait = self._options.poll_interval_s
            if free <= 0:
                # every channel is busy: the loop wakes when a call ends, and otherwise
                # only for its periodic duties (no store poll while nothing can be placed)
                wait = max(wait, min(self._until_duty(now, last_renew, last_reclaim,
                                                      last_health), self._options.max_idle_s))
            elif not claimed and next_due is not None and not self._paused(now):
                due = await self._store_step(next_due)
                until_due = (due - now).total_seconds() if due else self._options.max_idle_s
                wait = min(max(until_due, self._options.poll_interval_s),
                           self._options.max_idle_s)
            if self._claimer.holds:
                wait = min(wait, self._options.hold_poll_s)
            await self._wait(stop, wait)
        self._settle_deadline = self._clock.now() + dt.timedelta(
            seconds=self._options.settle_after_stop_s)
        if self._calls:
            await asyncio.gather(*self._calls, return_exceptions=True)
        if self._fatal is not None:
            raise self._fatal
        return self.stats

    def _until_duty(self, now: dt.datetime, last_renew: dt.datetime,
                    last_reclaim: dt.datetime, last_health: dt.datetime) -> float:
        """Seconds until the loop's next periodic duty (lease renewal, reclaim, health)."""
        o = self._options
        return min((last_renew - now).total_seconds() + o.lease_renew_s,
                   (last_reclaim - now).total_seconds() + o.reclaim_interval_s,
                   (last_health - now).total_seconds() + o.health_interval_s)

    def _paused(self, now: dt.datetime) -> bool:
        if self._paused_until is not None and now >= self._paused_until:
            self._paused_until = None
            self._clear(Alarm.FAILURES)
        return bool(self.stats.alarms)

    async def _wait(self, stop: asyncio.Event, seconds: float) -> None:
        """Sleep (on the campaign's clock) but wake early when a call ends or on stop."""
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        stopper = asyncio.ensure_future(stop.wait())
        ender = asyncio.ensure_future(self._call_ended.wait())
        await asyncio.wait({sleeper, stopper, ender}, return_when=asyncio.FIRST_COMPLETED)
        self._call_ended.clear()  # this wake sees every call that has ended so far
        for fut in (sleeper, stopper, ender):
            if not fut.done():
                fut.cancel()
        await asyncio.gather(sleeper, stopper, ender, return_exceptions=True)

    # -- faults and alarms ----------------------------------------------------------------

    def _raise(self, kind: Alarm, message: str) -> None:
        if self.stats.alarms.get(kind) != message:
            log.error("alarm %s: %s; calling paused", kind, message)
        self.stats.alarms[kind] = message

    def _clear(self, kind: Alarm) -> None:
        if self.stats.alarms.pop(kind, None) is not None:
            log.warning("alarm %s cleared; calling resumes", kind)

    def _store_backoff(self) -> float:
        return min(self._options.store_backoff_max_s, max(self._options.poll_interval_s, 1.0))

    async def _store_step(self, fn: Callable[P, R], *args: P.args,
                          **kwargs: P.kwargs) -> R | None:
        """One store operation of the loop: None (and the store alarm) when the store is
        away; the loop then places no new calls until it answers again."""
        try:
            result = await self._db.call(fn, *args, **kwargs)
        except TemporaryError as exc:
            self._raise(Alarm.STORE, exc.message)
            return None
        self._clear(Alarm.STORE)
        return result

    async def _store_retry(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """A store operation a call cannot do without: retried with backoff until it lands
        (after `stop`, until the settle deadline; then the last error is raised)."""
        delay = 0.5
        while True:
            try:
                result = await self._db.call(fn, *args, **kwargs)
            except TemporaryError as exc:
                self._raise(Alarm.STORE, exc.message)
                if self._settle_deadline is not None and \
                        self._clock.now() >= self._settle_deadline:
                    raise
                await self._sleep(delay)
                delay = min(delay * 2, self._options.store_backoff_max_s)
                continue
            self._clear(Alarm.STORE)
            return result

    async def _check_health(self) -> None:
        problems = [p for check in self._health_checks if (p := check()) is not None]
        if problems:
            self._raise(Alarm.RECORDINGS, "; ".join(problems))
            return
        if self._spool_sweep is not None and (self._spooled
                                              or Alarm.RECORDINGS in self.stats.alarms):
            sweep = await self._store_step(self._spool_sweep)
            if sweep is None:
                return
            if sweep.problem is not None:
                self._raise(Alarm.RECORDINGS, sweep.problem)
                return
            self._spooled = sweep.waiting > 0
            if sweep.filed:
                log.warning("filed %d spooled recordings", sweep.filed)
        self._clear(Alarm.RECORDINGS)

    async def _reclaim(self, now: dt.datetime) -> None:
        own: set[int] = {a for a in self._in_flight.values() if a is not None}
        settled = await self._store_step(
            self._attempts.reconcile, now, own, all_claims_are_dead=False,
            grace=dt.timedelta(seconds=self._options.reclaim_grace_s))
        if settled:
            self.stats.reclaimed += settled
            log.warning("reclaimed %d attempts whose dialer died", settled)

    def _note_outcome(self, summary: CallSummary) -> CallSummary:
        """A run of failed calls pauses calling, says why in the log and the alarms, and
        puts a ticket on the worklist (on the call that completed the run, written with
        its outcome) so a person looks at the dialer. Returns the summary to write."""
        if summary.dial not in (DialOutcome.ERROR, DialOutcome.FAILED):
            self._failures = 0
            return summary
        self._failures += 1
        if self._failures < self._options.max_consecutive_failures:
            return summary
        self._failures = 0
        self._paused_until = self._clock.now() + dt.timedelta(
            seconds=self._options.failure_pause_s)
        why = (f"{self._options.max_consecutive_failures} calls in a row failed "
               f"({summary.error or summary.dial.value})")
        self._raise(Alarm.FAILURES, why)
        pause_min = round(self._options.failure_pause_s / 60)
        ticket = TicketRequest(TicketReason.CALLING_PAUSED, None, ticket_text(
            self._options.staff_language, TicketText.CALLING_PAUSED, minutes=pause_min,
            why=why))
        return replace(summary, tickets=(*summary.tickets, ticket))

    # -- one call -------------------------------------------------------------------------

    def _start(self, task: ClaimedTask) -> None:
        self._in_flight[task.task_id] = None
        self._waiting_for_slot += 1
        call = asyncio.create_task(self._call(task), name=f"call-task-{task.task_id}")
        self._calls.add(call)
        call.add_done_callback(self._ended)

    def _ended(self, call: asyncio.Task[None]) -> None:
        self._calls.discard(call)
        self._call_ended.set()

    async def _call(self, task: ClaimedTask) -> None:
        """Plan, place and settle one claimed task's call. The trunk channel is held only
        while the call is up; the task stays in flight (its lease renewed) until its
        outcome is written."""
        queued = True
        try:
            opened = await self._store_retry(self._open, task, self._clock.now())
            prepared, failure = opened.prepared, opened.failure
            if opened.closed:
                self.stats.count(ScriptOutcome.COMPLETED.value)
                return
            if opened.attempt_id is None:  # the patient has a live call elsewhere: not now
                self.stats.count("patient_busy")
                return
            attempt_id = opened.attempt_id
            self._in_flight[task.task_id] = attempt_id
            plan: CallPlan | None = None
            if prepared is not None:
                try:
                    plan = await self._planner.plan(prepared, attempt_id)
                except Exception as exc:  # e.g. no speech synthesis: counted, then paused
                    log.exception("attempt %s: the first prompts could not be made", attempt_id)
                    failure = exc
            if plan is None:
                summary = self._note_outcome(CallSummary(
                    DialOutcome.ERROR, error=f"{type(failure).__name__}: {failure}"[:500]))
            else:
                async with self._pacer.slot():
                    self._waiting_for_slot -= 1
                    queued = False
                    self.stats.in_flight += 1
                    started = self._clock.now()
                    self.events.publish(ProgressEvent(attempt_id, CallProgress.PLACED,
                                                      started, plan=plan))
                    try:
                        summary = await self._place(plan)
                    finally:
                        self.stats.in_flight -= 1
                        self.stats.busy_channel_seconds += (
                            self._clock.now() - started).total_seconds()
                self.events.publish(ProgressEvent(attempt_id, CallProgress.ENDED,
                                                  self._clock.now()))
            await self._recorder.drain(attempt_id)
            result = await self._settle(attempt_id, summary)
            self._tally(summary, result)
        except TemporaryError as exc:
            log.error("task %s: store away past the settle deadline (%s); its lease will "
                      "expire and a dialer will reclaim it", task.task_id, exc.message)
        except Exception:  # a bug in one call must never stop the campaign
            log.exception("task %s: call failed", task.task_id)
            self.stats.failed_calls += 1
        finally:
            if queued:
                self._waiting_for_slot -= 1
            self._in_flight.pop(task.task_id, None)

    def _open(self, task: ClaimedTask, now: dt.datetime) -> _Opened:
        """In the store's thread, in one hop from the loop: read what the call needs and
        write its attempt; or close the task when earlier calls left nothing to ask."""
        try:
            prepared: PreparedCall | None = self._planner.prepare(task, now)
        except TemporaryError:
            raise
        except Exception as exc:  # e.g. the script is gone: an error, never a loop
            log.exception("task %s: the call could not be prepared", task.task_id)
            return _Opened(None, exc, self._attempts.begin(task, now))
        assert prepared is not None
        if prepared.nothing_left:
            self._attempts.complete_without_call(task, now)
            return _Opened(prepared, None, None, closed=True)
        return _Opened(prepared, None, self._attempts.begin(task, now))

    async def _settle(self, attempt_id: AttemptId, summary: CallSummary) -> FinishResult:
        try:
            result = await self._store_retry(self._attempts.finish, attempt_id, summary,
                                             self._clock.now())
        except TemporaryError:
            raise
        except Exception as exc:  # e.g. a value the store refuses: record the call anyway
            log.exception("attempt %s: outcome could not be written; recording an error",
                          attempt_id)
            result = await self._store_retry(
                self._attempts.finish, attempt_id,
                CallSummary(DialOutcome.ERROR, error=f"{type(exc).__name__}: {exc}"[:500],
                            tickets=summary.tickets, opted_out=summary.opted_out),
                self._clock.now())
        if result.spooled is not None:
            self._spooled = True
            self._raise(Alarm.RECORDINGS, result.spooled)
        return result

    async def _place(self, plan: CallPlan) -> CallSummary:
        try:
            report = await self._telephony.place(plan, self.events)
        except ConfigError as exc:
            log.error("configuration error, stopping: %s", exc.message)
            self._fatal = exc
            summary = CallSummary(DialOutcome.FAILED, error=exc.message)
        except TemporaryError as exc:
            log.warning("telephony unavailable for attempt %s: %s", plan.attempt_id,
                        exc.message)
            summary = CallSummary(DialOutcome.FAILED, error=exc.message)
        except Exception as exc:  # one broken call must not stop the campaign
            log.exception("call for attempt %s failed", plan.attempt_id)
            self.stats.failed_calls += 1
            result = plan.result
            summary = CallSummary(DialOutcome.ERROR, error=f"{type(exc).__name__}: {exc}",
                                  tickets=result.tickets if result else (),
                                  opted_out=result.opted_out if result else False)
        else:
            summary = summarise_report(report, plan)
        return self._note_outcome(summary)

    def _count_progress(self, event: ProgressEvent) -> None:
        if event.progress is CallProgress.DIALLED:
            self.stats.dialled += 1
        elif event.progress is CallProgress.ANSWERED:
            self.stats.answered += 1

    def _tally(self, summary: CallSummary, result: FinishResult) -> None:
        s = self.stats
        s.count(summary.script.value if summary.script else summary.dial.value)
        if summary.script is ScriptOutcome.COMPLETED or result.status is TaskStatus.DONE:
            s.completed += 1
        s.tickets += result.tickets
        s.red_flags += sum(1 for t in summary.tickets if t.reason is TicketReason.RED_FLAG)
