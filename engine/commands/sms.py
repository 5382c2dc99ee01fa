"""`followup sms list|templates|serve`: the messages sent to patients, their texts, and the
sender on its own (`followup run` runs it too)."""

from __future__ import annotations

import asyncio
import signal

import click
from sqlalchemy import select

from console.i18n import translate
from core.calling_window import zone
from core.enums import MessageStatus
from core.sms_templates import counted_texts
from core.store.models import Patient, SmsMessage
from engine.app import App
from engine.context import pass_app


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
    query = (select(SmsMessage, Patient.name).join(Patient, Patient.id == SmsMessage.patient_id)
             .order_by(SmsMessage.created_at.desc(), SmsMessage.id.desc()))
    if patient is not None:
        query = query.where(SmsMessage.patient_id == patient)
    if status is not None:
        query = query.where(SmsMessage.status == MessageStatus(status))
    with app.db.session() as s:
        rows = s.execute(query.limit(limit)).all()
    if not rows:
        click.echo("no messages")
        return
    click.echo(f"{len(rows)} messages, newest first (times in {tz_name})")
    for m, name in rows:
        why = translate("en", f"msg_block.{m.block_reason.value}") if m.block_reason else ""
        because = " · ".join(x for x in (why, m.detail or "") if x)
        click.echo(f"message {m.id}  {name} (patient {m.patient_id})  "
                   f"{translate('en', f'msg_purpose.{m.purpose.value}')}  queued "
                   f"{m.created_at.astimezone(tz):%m-%d %H:%M}  "
                   f"{translate('en', f'msg_status.{m.status.value}')}  "
                   f"{m.segments} part{'s' if m.segments != 1 else ''}"
                   + (f"  ({because})" if because else ""))


@sms.command("templates")
@pass_app
def templates(app: App) -> None:
    """Each message's text per locale, with its length and parts (a link counted at its
    real length)."""
    hospital = app.settings.hospital
    for row in counted_texts({"zh-CN": hospital.name, "en": hospital.name_en}):
        click.echo(f"{row.key} [{row.locale}]: {row.chars} characters, "
                   f"{'UCS-2' if row.encoding == 'ucs2' else 'GSM 7-bit'}, {row.parts} "
                   f"part{'s' if row.parts != 1 else ''}")
        click.echo(f"    {row.text}")


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
