"""`followup demo`."""

from __future__ import annotations

import datetime as dt

import click
from rich.console import Console

from engine.commands.doctor import preflight
from engine.context import LazyApp
from engine.demo import DemoOptions, run_demo


def register(cli: click.Group) -> None:
    cli.add_command(demo)


@click.command()
@click.option("--patients", type=click.IntRange(10, 100_000), default=1000, show_default=True,
              help="Patients in the synthetic HIS.")
@click.option("--days", type=click.IntRange(1, 60), default=14, show_default=True,
              help="Simulated days of calling.")
@click.option("--speed", type=float, default=300.0, show_default=True,
              help="How much faster than real time the simulated calls run.")
@click.option("--channels", type=click.IntRange(1, 500), default=12, show_default=True,
              help="Simulated trunk channels.")
@click.option("--seed", type=int, default=7, show_default=True, help="Same seed, same demo.")
@click.option("--today", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="The day the simulation ends (default: today).")
@click.option("--no-console", is_flag=True, help="Do not serve the console afterwards.")
@click.option("--port", type=int, default=None, help="Console port (default: console.port).")
@click.pass_obj
def demo(lazy: LazyApp, patients: int, days: int, speed: float, channels: int, seed: int,
         today: dt.datetime | None, no_console: bool, port: int | None) -> None:
    """Run the whole engine end to end on a fresh store in the data folder (default
    var/): synthetic HIS -> sync -> plan -> simulated calls with real prompts, keypad and
    voice answers, recordings, red flags and tickets over the last DAYS days; then serve
    the web console and print its address and the demo logins. Replaces an earlier demo's
    data."""
    settings = lazy.settings()
    serve = None if no_console else (settings.console.host, port or settings.console.port)
    preflight(settings, calls=True, store_ready=False, backend="sim", serve=serve)
    run_demo(settings, DemoOptions(patients=patients, days=days, speed=speed,
                                   channels=channels, seed=seed,
                                   today=today.date() if today else None,
                                   console=not no_console, console_port=port), Console())
