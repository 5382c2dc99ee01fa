"""`followup doctor`, and the preflight `demo`, `run` and `console` make before they start."""

from __future__ import annotations

import click

from core.errors import FollowupError
from core.settings import BackendName, Settings
from engine import doctor as checks
from engine.context import LazyApp


class PreflightFailed(FollowupError):
    """A part the work needs is missing; the lines before this one say which and how to fix
    it."""

    code = "preflight"


def register(cli: click.Group) -> None:
    cli.add_command(doctor)


def preflight(settings: Settings, *, calls: bool, store_ready: bool = True,
              backend: BackendName | None = None, serve: tuple[str, int] | None = None,
              daemon: bool = False) -> None:
    """Print each problem on its own line and raise PreflightFailed if any stops the work.
    `serve`: the console's address, which must be free (see `engine.doctor.check`)."""
    found = checks.check(settings, calls=calls, store_ready=store_ready, backend=backend,
                         serve=serve, daemon=daemon)
    stopping = checks.problems(found)
    for finding in found:
        if not finding.ok:
            click.echo(finding.line(), err=True)
    if stopping:
        what = "calling" if calls else "the console"
        if serve is not None and calls:
            what = "the demo"
        raise PreflightFailed(f"{len(stopping)} part(s) missing: not starting {what} "
                              "(see `followup doctor`)")


@click.command()
@click.option("--backend", type=click.Choice(["sim", "asterisk"]), default=None,
              help="Check for this telephony backend. Default: the dialer.backend setting.")
@click.pass_obj
def doctor(lazy: LazyApp, backend: BackendName | None) -> None:
    """Check every part the engine needs (database, speech synthesis and recognition,
    recordings folders, Asterisk when that backend is chosen): one line per part, with the
    fix for each problem. Exits 1 when something calls need is missing."""
    found = checks.check(lazy.settings(), backend=backend)
    for finding in found:
        click.echo(finding.line())
    if checks.problems(found):
        raise click.exceptions.Exit(1)
