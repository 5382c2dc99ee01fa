"""`followup demo`: the whole engine end to end on the embedded default.

A fresh SQLite store, a synthetic HIS of a few hundred patients across departments and
languages, the HIS sync (broken rows quarantined), planning, then a campaign on the sim
backend in accelerated time — real IVR, real espeak-ng prompts, real Vosk for Korean voice
answers, real call recordings — with a live progress display. The simulated day starts at
09:00 in the hospital's time zone on today's date; nights and idle gaps are skipped.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.live import Live
from rich.table import Table
from sqlalchemy import func, select

from core.clock import AcceleratedClock, Clock
from core.enums import Role
from core.errors import ConfigError
from core.settings import Settings
from core.store.models import (
    Answer,
    CallAttempt,
    Department,
    FollowupTask,
    Recording,
    SmsMessage,
    Ticket,
    User,
)
from dialer.campaign import CampaignStats
from engine import his_service, sms_service
from engine.app import App, build_app
from engine.dialing import build_dialer, sim_telephony_factory
from engine.planning import PlanningService, build_planner, queue_reminders
from hisync.synthetic import generate_his


@dataclass(frozen=True)
class DemoOptions:
    patients: int = 1000
    days: int = 14
    speed: float = 300.0
    channels: int = 12
    seed: int = 7
    today: dt.date | None = None  # the simulation ends on this day (default: today)
    console: bool = True  # serve the console afterwards (until Ctrl-C)
    console_port: int | None = None


DEMO_PASSWORD = "followup-demo"  # printed by the demo; demo stores only
DEMO_USERS = (  # username, role, department code, display name
    ("sysadmin", Role.SYSADMIN, None, "系统管理员 System admin"),
    ("admin", Role.ADMIN, None, "随访办 Follow-up office"),
    ("card-head", Role.DEPT_MANAGER, "CARD", "心内科主任 Cardiology head"),
    ("supervisor", Role.SUPERVISOR, None, "质控 QA supervisor"),
    ("agent", Role.AGENT, None, "坐席 Call-centre agent"),
)


@dataclass
class DemoResult:
    data_dir: Path
    sync: dict[str, int]
    plan: str
    stats: CampaignStats
    totals: dict[str, Any]


DEMO_MARK = ".made-by-demo"  # a store the demo may replace; any other it never touches


def _fresh(data_dir: Path) -> None:
    """Clear an earlier demo's store. Raises ConfigError for a folder holding a store the
    demo did not make: the demo shares the CLI's default folder, and must never wipe a
    hospital's data."""
    store = data_dir / "followup.sqlite"
    if store.exists() and store.stat().st_size > 0 and not (data_dir / DEMO_MARK).exists():
        raise ConfigError("data_dir", f"{data_dir} holds a store the demo did not make; "
                          "run the demo elsewhere: followup --data-dir DIR demo")
    if data_dir.exists():
        for name in ("followup.sqlite", "followup.sqlite-wal", "followup.sqlite-shm",
                     "followup.sqlite.dialer.lock", "his.sqlite"):
            (data_dir / name).unlink(missing_ok=True)
        for sub in ("recordings", "sim-calls"):
            shutil.rmtree(data_dir / sub, ignore_errors=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / DEMO_MARK).write_text("followup demo: this store may be replaced by the "
                                      "next demo\n", encoding="utf-8")


def _progress_table(stats: CampaignStats, clock: Clock, tz: str) -> Table:
    local = clock.now().astimezone(ZoneInfo(tz))
    t = Table(title=f"campaign — simulated time {local:%Y-%m-%d %H:%M}", title_justify="left")
    for col in ("in call", "dialled", "answered", "completed", "red flags", "tickets"):
        t.add_column(col, justify="right")
    t.add_row(str(stats.in_flight), str(stats.dialled), str(stats.answered),
              str(stats.completed), str(stats.red_flags), str(stats.tickets))
    return t


def run_demo(settings: Settings, options: DemoOptions, console: Console,
             on_app: Callable[[App], None] | None = None) -> DemoResult:
    tz = ZoneInfo(settings.hospital.default_timezone)
    # the simulated days end today, so the console shows recent weeks, not the future
    day = (options.today or dt.datetime.now(tz).date()) - dt.timedelta(days=options.days)
    start = dt.datetime.combine(day, dt.time(9, 0), tz)
    clock = AcceleratedClock(start, options.speed)
    data_dir = Path(settings.data_dir).resolve()
    _fresh(data_dir)
    settings = settings.model_copy(update={
        "dialer": settings.dialer.model_copy(update={"max_channels": options.channels,
                                                     "calls_per_second": 5.0})})
    app = build_app(settings, clock)
    if on_app is not None:
        on_app(app)
    app.db.migrate()
    his_file = data_dir / "his.sqlite"
    console.print(f"[bold]1.[/] synthetic HIS: {options.patients} patients -> {his_file}")
    manifest = generate_his(his_file, patients=options.patients, seed=options.seed,
                            as_of=day)
    console.print(f"   {manifest.patient_rows} patient rows, {manifest.encounter_rows} visit rows, "
                  f"{len(manifest.broken)} deliberately broken")
    report = his_service.run_sync(app, f"sqlite:///{his_file}")
    totals = report.totals
    console.print(f"[bold]2.[/] HIS sync: read {totals.read}, new {totals.inserted}, "
                  f"rejected {totals.rejected} (see `followup --data-dir {data_dir} his "
                  "rejects`)")
    counts = PlanningService(app.db, build_planner(settings), clock).run()
    cancelled = ", ".join(f"{k} {v}" for k, v in sorted(counts.cancelled.items())) or "none"
    console.print(f"[bold]3.[/] planned {counts.created} follow-up calls for {counts.patients} "
                  f"patients ({counts.merged} merged into same-day calls; cancelled: "
                  f"{cancelled})")
    console.print(f"[bold]4.[/] calling on the simulated backend, {options.channels} channels, "
                  f"{options.speed:g}x time, {options.days} day(s) from {start:%Y-%m-%d %H:%M}")
    stats = asyncio.run(_campaign(app, clock, options, start, console))
    result = DemoResult(data_dir, {"read": totals.read, "inserted": totals.inserted,
                                   "rejected": totals.rejected}, str(counts), stats,
                        _totals(app))
    t = result.totals
    console.print(f"[bold]5.[/] done: {t['attempts']} calls, {t['answers']} answers stored, "
                  f"{t['recordings']} recordings, {t['tickets']} tickets for agents; "
                  f"tasks by status: {t['tasks']}")
    asyncio.run(_messages(app, clock, options, console))
    console.print(f"   store: {app.settings.database_url}")
    app.close()
    if options.console:
        serve_console(settings, options, console)
    return result


def demo_users(app: App) -> list[tuple[str, str]]:
    """Create the demo logins (skipping existing ones); returns (username, role)."""
    from console.accounts import AccountService
    from console.forms import UserForm

    accounts = AccountService(app.clock, app.audit, app.settings.console.max_failed_logins)
    made = []
    with app.db.session() as s:
        for username, role, dept_code, name in DEMO_USERS:
            if s.execute(select(User.id).where(User.username == username)).first():
                made.append((username, role.value))
                continue
            dept = (s.execute(select(Department.id).where(Department.code == dept_code))
                    .scalar() if dept_code else None)
            accounts.create_user(s, UserForm(username, name, DEMO_PASSWORD, role, dept),
                                 actor="demo")
            made.append((username, role.value))
    return made


def serve_console(settings: Settings, options: DemoOptions, console: Console) -> None:
    """Serve the console over the demo store on the wall clock (until Ctrl-C)."""
    import uvicorn

    from engine.console_app import build_console

    app = build_app(settings)
    logins = demo_users(app)
    host = settings.console.host
    port = options.console_port or settings.console.port
    console.print(f"[bold]6.[/] console: http://{host}:{port}/  (Ctrl-C to stop)")
    for username, role in logins:
        console.print(f"   login {username:<11} password {DEMO_PASSWORD}   ({role})")
    try:
        uvicorn.run(build_console(app), host=host, port=port, log_level="warning",
                    server_header=False)
    finally:
        app.close()


async def _campaign(app: App, clock: AcceleratedClock, options: DemoOptions,
                    start: dt.datetime, console: Console) -> CampaignStats:
    factory = sim_telephony_factory(app, clock, clock.sleep, options.seed,
                                    app.data_dir / "sim-calls")
    parts = build_dialer(app, clock, clock.sleep, factory, backend="sim")
    horizon = start + dt.timedelta(days=options.days)
    stop = asyncio.Event()
    tz = app.settings.hospital.default_timezone
    try:
        with Live(_progress_table(parts.campaign.stats, clock, tz), console=console,
                  refresh_per_second=4, transient=not console.is_terminal) as live:
            runner = asyncio.create_task(parts.campaign.run(
                stop, until_idle=True, next_due=parts.claimer.next_due, horizon=horizon,
                skip_idle=clock.jump_to))
            while not runner.done():
                live.update(_progress_table(parts.campaign.stats, clock, tz))
                await asyncio.wait({runner}, timeout=0.25)
            live.update(_progress_table(parts.campaign.stats, clock, tz))
            return runner.result()
    finally:
        parts.close()


async def _messages(app: App, clock: AcceleratedClock, options: DemoOptions,
                    console: Console) -> None:
    """SMS on the sim gateway: the questionnaire link to the patients no call reached, the
    red-flag notices and today's care reminders, sent when the next sending window opens."""
    from core.sms import window_open
    from messaging.sim import SimGateway
    from messaging.triggers import links_after_failed_calls, red_flag_notices

    now = clock.now()
    since = dt.timedelta(days=options.days + 1)
    with app.db.session() as s:
        links = links_after_failed_calls(s, sms_service.policy(app),
                                         sms_service.link_settings(app), now, since)
        notices = red_flag_notices(s, sms_service.policy(app), now, since)
    reminders = queue_reminders(app)
    tz = app.settings.hospital.default_timezone
    clock.jump_to(window_open(now, tz, sms_service.policy(app).window))
    gateway = SimGateway(report_delay_s=0.01)
    sender = sms_service.sender(app, gateway)
    await gateway.start(sender)
    while await sender.drain_once():
        pass
    await asyncio.sleep(0.1)  # the sim's delivery reports
    await sender.flush()
    await gateway.close()
    with app.db.session() as s:
        states = dict(s.execute(select(SmsMessage.status, func.count())
                                .group_by(SmsMessage.status)).all())
    shown = ", ".join(f"{k.value} {v}" for k, v in sorted(states.items())) or "none"
    console.print(f"   SMS (sim gateway, sent from {clock.now().astimezone(ZoneInfo(tz)):%H:%M}"
                  f" local): {links} questionnaire links for patients no call reached, "
                  f"{notices} red-flag notices, {reminders} care reminders; messages by "
                  f"state: {shown}")


def _totals(app: App) -> dict[str, Any]:
    with app.db.session() as s:
        def count(model: Any) -> int:
            return int(s.execute(select(func.count()).select_from(model)).scalar_one())

        tasks = dict(s.execute(select(FollowupTask.status, func.count())
                               .group_by(FollowupTask.status)).all())
        return {"attempts": count(CallAttempt), "answers": count(Answer),
                "recordings": count(Recording), "tickets": count(Ticket),
                "tasks": {k.value: v for k, v in sorted(tasks.items())}}
