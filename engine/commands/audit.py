"""`followup audit ...`: check that nobody changed the audit log."""

from __future__ import annotations

import click

from core.audit import verify_chain
from engine.app import App
from engine.context import pass_app


def register(cli: click.Group) -> None:
    cli.add_command(audit)


@click.group()
def audit() -> None:
    """The audit log: every login, playback, download and purge, HMAC-chained."""


@audit.command()
@pass_app
def verify(app: App) -> None:
    """Check the whole audit chain (its HMAC under the audit key, and the links anchored
    outside the store). Exits 1 and names the first bad entry if any row was changed,
    deleted or written without the key."""
    with app.db.session() as session:
        report = verify_chain(session, app.audit_key, app.settings.audit_anchor)
    if report.ok:
        click.echo(f"audit log intact: {report.entries} entries")
        return
    click.echo(f"AUDIT LOG BROKEN at entry {report.broken_at}: {report.problem} "
               f"({report.entries} entries checked)", err=True)
    raise SystemExit(1)
