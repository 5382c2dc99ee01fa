"""`followup dial` and `followup run`: work the due calls."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import click

from core.clock import AcceleratedClock, Clock
from core.errors import TemporaryError
from core.settings import BackendName
from dialer.asterisk.backend import AsteriskBackend
from dialer.attempt_log import AttemptLog
from dialer.call_handler import IvrCallHandler
from dialer.campaign import CampaignStats, Sleep
from dialer.telephony import Telephony
from engine.app import App
from engine.context import pass_app
from engine.dialing import (
    DialerParts,
    asterisk_backend,
    build_dialer,
    live_feed_service,
    sim_telephony_factory,
)
from ivr.script_model import Script

log = logging.getLogger(__name__)

START_RETRY_FIRST_S = 0.5
START_RETRY_LONGEST_S = 10.0


def register(cli: click.Group) -> None:
    cli.add_command(dial)
    cli.add_command(run)


def sim_clock(now: dt.datetime, speed: float, epoch: dt.datetime | None) -> AcceleratedClock:
    """The accelerated clock of a simulation started at wall time `now`.

    Without `epoch` simulated time starts at `now`. With it, simulated time is
    `epoch + speed * (wall - epoch)` whenever the process starts, so several dialer
    processes, and a dialer restarted mid-run, share one simulated clock: leases and
    daily caps compare times of one timeline (each process starting from its own `now`
    would put a later one `speed` times its start delay behind, and every lease it writes
    would look long expired to the others)."""
    start = now if epoch is None else epoch + (now - epoch) * speed
    return AcceleratedClock(start, speed)


def _parse_epoch(_ctx: click.Context, _param: click.Parameter,
                 value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        epoch = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"not an ISO date and time: {value}") from exc
    if epoch.tzinfo is None:
        raise click.BadParameter("give the time zone (e.g. 2026-03-10T01:00:00+00:00)")
    return epoch.astimezone(dt.UTC)


async def reconcile_at_start(attempts: AttemptLog, clock: Clock, live: set[int], *,
                             all_claims_are_dead: bool, sleep: Sleep = asyncio.sleep) -> int:
    """Settle what a stopped dialer left open before the first claim; returns how many.

    A store that is away (a restart, killed connections) is waited for with backoff, in
    wall time (`sleep`: an outage lasts real seconds whatever the campaign clock's speed),
    so a dialer started during a database restart comes up with the database instead of
    exiting. Other errors are raised."""
    pause = START_RETRY_FIRST_S
    while True:
        try:
            return await asyncio.to_thread(attempts.reconcile, clock.now(), live,
                                           all_claims_are_dead=all_claims_are_dead)
        except TemporaryError as exc:
            log.warning("the store is away at start (%s); trying again in %.1f s",
                        exc.message, pause)
        await sleep(pause)
        pause = min(pause * 2, START_RETRY_LONGEST_S)


@contextlib.asynccontextmanager
async def _dialer(app: App, backend: BackendName, clock: Clock, sleep: Sleep,
                  seed: int) -> AsyncIterator[DialerParts]:
    """The dialer on `backend`, started (Asterisk: connected, and what a stopped dialer left
    open settled against the channels still live), and closed at the end."""
    live: set[int] = set()
    started: list[AsteriskBackend] = []
    if backend == "asterisk":
        def factory(handler: IvrCallHandler, scripts: list[Script]) -> Telephony:
            ast = asterisk_backend(app, clock, handler)
            started.append(ast)
            return ast
    else:
        factory = sim_telephony_factory(app, clock, sleep, seed,
                                        Path(app.data_dir) / "sim-calls")
    parts = build_dialer(app, clock, sleep, factory, backend=backend)
    try:
        for ast in started:
            await ast.start()
            live |= {int(a) for a in await ast.live_attempts() if a.isascii() and a.isdigit()}
        reconciled = await reconcile_at_start(parts.attempts, clock, live,
                                              all_claims_are_dead=app.db.dialect == "sqlite")
        if reconciled:
            log.warning("settled %d call(s) left open by a stopped dialer", reconciled)
        yield parts
    finally:
        for ast in started:
            await ast.close()
        parts.close()


def _clock(app: App, backend: BackendName, speed: float,
           epoch: dt.datetime | None = None) -> tuple[Clock, Sleep]:
    if speed == 1.0:
        return app.clock, asyncio.sleep
    if backend == "asterisk":
        raise click.UsageError("--speed is for the sim backend; Asterisk runs in real time")
    clock = sim_clock(app.clock.now(), speed, epoch)
    return clock, clock.sleep


async def _dial(app: App, backend: BackendName, seed: int, speed: float,
                days: float) -> CampaignStats:
    if backend == "asterisk" and days:
        raise click.UsageError("--days is for the sim backend: real calls cannot skip ahead")
    clock, sleep = _clock(app, backend, speed)
    async with _dialer(app, backend, clock, sleep, seed) as parts:
        stop = asyncio.Event()
        skip = clock.jump_to if isinstance(clock, AcceleratedClock) else None
        horizon = clock.now() + dt.timedelta(days=days)
        return await parts.campaign.run(stop, until_idle=True, next_due=parts.claimer.next_due,
                                        horizon=horizon, skip_idle=skip)


@click.command()
@click.option("--backend", type=click.Choice(["sim", "asterisk"]), default=None,
              help="Telephony backend. Default: the dialer.backend setting.")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Simulated patients' random seed (sim backend).")
@click.option("--speed", type=float, default=1.0, show_default=True,
              help="Run simulated time this many times faster (sim backend).")
@click.option("--days", type=click.FloatRange(0, 365), default=0.0, show_default=True,
              help="Also make the retries and calls that fall due in this many days "
                   "(sim backend: simulated time skips the idle hours).")
@pass_app
def dial(app: App, backend: BackendName | None, seed: int, speed: float, days: float) -> None:
    """Call every patient whose follow-up is due now, then stop (on the sim backend, or
    through Asterisk with `--backend asterisk`).

    Calls are made only inside each patient's calling window and the hospital's calling
    hours; opted-out, deceased and readmitted patients are skipped (and their tasks
    cancelled with the reason). Busy and unanswered calls are retried later by `run`.
    """
    from engine.commands.doctor import preflight

    chosen = backend or app.settings.dialer.backend
    preflight(app.settings, calls=True, backend=chosen)
    stats = asyncio.run(_dial(app, chosen, seed, speed, days))
    click.echo(f"claimed {stats.claimed}, dialled {stats.dialled}, answered {stats.answered}, "
               f"completed {stats.completed}, red flags {stats.red_flags}, "
               f"tickets {stats.tickets}")


@click.command()
@click.option("--backend", type=click.Choice(["sim", "asterisk"]), default=None,
              help="Telephony backend. Default: the dialer.backend setting.")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Simulated patients' random seed (sim backend).")
@click.option("--no-jobs", is_flag=True, help="Only dial; no scheduled sync/plan/retention.")
@click.option("--speed", type=float, default=1.0, show_default=True,
              help="Simulation only: run time this many times faster.")
@click.option("--sim-epoch", callback=_parse_epoch, default=None, metavar="ISO-TIME",
              help="Simulation only: the wall time at which simulated time equals wall time "
                   "(simulated = epoch + speed x (wall - epoch)); give every dialer "
                   "process of one simulation the same epoch so they share one clock.")
@pass_app
def run(app: App, backend: BackendName | None, seed: int, no_jobs: bool, speed: float,
        sim_epoch: dt.datetime | None) -> None:
    """The follow-up daemon: syncs the HIS and plans every few minutes, dials what is due,
    retries busy and unanswered calls, purges expired recordings at night.

    Stop it with SIGTERM (or Ctrl-C): it makes no new calls and waits for calls in
    progress to finish.
    """
    from engine.commands.doctor import preflight
    from engine.jobs import daemon_jobs

    preflight(app.settings, calls=True, backend=backend or app.settings.dialer.backend,
              daemon=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                                                   "%(message)s")
    asyncio.run(_run(app, backend or app.settings.dialer.backend, seed,
                     None if no_jobs else daemon_jobs(app), speed, sim_epoch))


async def _run(app: App, backend: BackendName, seed: int, jobs: object, speed: float,
               sim_epoch: dt.datetime | None = None) -> None:
    from engine.daemon import Daemon, DaemonJobs

    clock, sleep = _clock(app, backend, speed, sim_epoch)
    async with _dialer(app, backend, clock, sleep, seed) as parts:
        wired = jobs if isinstance(jobs, DaemonJobs) else DaemonJobs()
        wired.services["live_feed"] = live_feed_service(app, parts)
        daemon = Daemon(parts.campaign, wired, app.settings.hospital.default_timezone,
                        clock, parts.claimer.next_due)
        daemon.install_signal_handlers()
        await daemon.run()
