"""`followup sms list|templates|serve`: the messages sent to patients, their texts, and the
sender on its own (`followup run` runs it too)."""

from __future__ import annotations

import asyncio
import signal

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from core.calling_window import zone
from core.enums import MessageStatus
from core.sms_templates import TEMPLATES
from core.sms_text import count
from core.store.models import SmsMessage
from engine.app import App
from engine.commands.verbatim import verbatim
from engine.context import pass_app

_SAMPLE_LINK = "https://example.org/q/" + "x" * 35  # as long as a real link


def register(cli: click.Group) -> None:
    cli.add_command(sms)


@click.group()
def sms() -> None:
    """Messages to patients: what was sent and how it ended, the texts, the sender.

    \b
    Examples:
      followup sms list --patient 42
      followup sms list --status failed
      followup sms templates
      followup sms serve
    """


@sms.command("list")
@click.option("--patient", type=int, metavar="ID", help="Only this patient's messages.")
@click.option("--status", type=click.Choice([s.value for s in MessageStatus]),
              help="Only messages in this state.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@pass_app
def list_cmd(app: App, patient: int | None, status: str | None, limit: int) -> None:
    """The newest messages, with their delivery state and why one failed or was blocked."""
    tz_name = app.settings.hospital.default_timezone
    tz = zone(tz_name)
    query = select(SmsMessage).order_by(SmsMessage.created_at.desc(), SmsMessage.id.desc())
    if patient is not None:
        query = query.where(SmsMessage.patient_id == patient)
    if status is not None:
        query = query.where(SmsMessage.status == MessageStatus(status))
    with app.db.session() as s:
        rows = list(s.execute(query.limit(limit)).scalars())
    if not rows:
        click.echo("no messages")
        return
    table = Table(title=f"Messages (times in {tz_name})", title_justify="left")
    for col in ("id", "patient", "purpose", "queued", "state", "parts", "why"):
        table.add_column(col)
    for m in rows:
        why = m.block_reason.value if m.block_reason is not None else ""
        table.add_row(str(m.id), str(m.patient_id), m.purpose.value,
                      m.created_at.astimezone(tz).strftime("%m-%d %H:%M"), m.status.value,
                      str(m.segments), verbatim(" ".join(x for x in (why, m.detail or "") if x)))
    Console(highlight=False, soft_wrap=True).print(table)


@sms.command("templates")
def templates() -> None:
    """Each message's text per locale, with its length and parts (a link counted at its
    real length)."""
    table = Table(title="SMS templates", title_justify="left")
    for col in ("template", "locale", "characters", "encoding", "parts", "text"):
        table.add_column(col)
    for t in TEMPLATES.values():
        for locale, text in t.texts.items():
            sample = text.format_map({"hospital": "示范医院" if locale == "zh-CN" else
                                      "Demo Hospital", "link": _SAMPLE_LINK, "hours": "4"})
            encoding, parts, chars = count(sample)
            table.add_row(t.key, locale, str(chars), encoding, str(parts), verbatim(text))
    Console(highlight=False, soft_wrap=True).print(table)


@sms.command("serve")
@pass_app
def serve(app: App) -> None:
    """Send queued messages and record delivery reports and replies until Ctrl-C."""
    from engine import sms_service

    async def main() -> str:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        click.echo(f"sending through the {app.settings.sms.gateway} gateway; Ctrl-C stops")
        return await sms_service.serve(app, stop)

    click.echo(asyncio.run(main()))
