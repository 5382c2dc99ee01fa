"""`followup dnc list|add|remove|import`: the do-not-call list from the command line.

The list is `core.do_not_call`'s; every change is audited as `cli:<login name>`. Times are
printed in the hospital's time zone and expiry dates read in it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from core.calling_window import zone
from core.do_not_call import (
    NOTE_MAX,
    DncRow,
    DncState,
    ImportProblem,
    add,
    decode_csv,
    entry_in_force,
    expiry,
    import_csv,
    listing,
    remove,
)
from core.enums import DncReason, DncSource
from core.phones import to_e164
from engine.app import App
from engine.commands.verbatim import verbatim
from engine.context import cli_actor, pass_app

REASON_WORDS = {DncReason.PATIENT_REQUEST: "patient's request",
                DncReason.WRONG_NUMBER: "wrong number", DncReason.OTHER: "other"}
SOURCE_WORDS = {DncSource.CONSOLE: "console", DncSource.CLI: "command line",
                DncSource.IMPORT: "import", DncSource.TICKET: "ticket"}
STATE_WORDS = {DncState.IN_FORCE: "in force", DncState.EXPIRED: "expired",
               DncState.REMOVED: "removed"}
PROBLEM_WORDS = {ImportProblem.MISSING_PHONE: "no phone number",
                 ImportProblem.BAD_NUMBER: "bad number",
                 ImportProblem.UNKNOWN_REASON: "unknown reason",
                 ImportProblem.BAD_DATE: "bad date (YYYY-MM-DD, after today)",
                 ImportProblem.NOTE_TOO_LONG: f"note longer than {NOTE_MAX} characters",
                 ImportProblem.TOO_MANY_COLUMNS: "too many columns"}


def register(cli: click.Group) -> None:
    cli.add_command(dnc)


@click.group()
def dnc() -> None:
    """The do-not-call list: numbers never called, hospital-wide.

    \b
    Examples:
      followup dnc list --search 13800138000
      followup dnc add "138 0013 8000" --reason wrong_number --note "HIS to fix"
      followup dnc remove 42 --why "the patient agreed to calls again"
      followup dnc import numbers.csv
    """


def _local(value: dt.datetime | None, app: App) -> str:
    if value is None:
        return ""
    return value.astimezone(zone(app.settings.hospital.default_timezone)).strftime(
        "%Y-%m-%d %H:%M")


def _phone(app: App, raw: str) -> str:
    phone = to_e164(raw, app.settings.hospital.default_region)
    if phone is None:
        raise click.BadParameter(f"{raw!r} is not a valid phone number", param_hint="PHONE")
    return phone


@dnc.command("list")
@click.option("--search", "q", default="", metavar="Q",
              help="A number (any format, or 4+ of its digits), a note's words or a "
                   "patient's name.")
@click.option("--all", "everything", is_flag=True, help="Removed and expired entries too.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=200, show_default=True)
@pass_app
def list_cmd(app: App, q: str, everything: bool, limit: int) -> None:
    """The numbers on the list, newest first."""
    with app.db.session() as s:
        rows = listing(s, app.clock.now(), q, everything, limit + 1,
                       region=app.settings.hospital.default_region)
    _print_rows(app, rows[:limit])
    shown = min(len(rows), limit)
    click.echo(f"{shown} entries" + (" (more match: narrow the search or raise --limit)"
                                     if len(rows) > limit else ""))


def _print_rows(app: App, rows: list[DncRow]) -> None:
    """One line an entry, in aligned columns (outside text shown verbatim)."""
    if not rows:
        return
    tz = app.settings.hospital.default_timezone
    headers = ("id", "number", "reason", "patient", "note", "source", "added by",
               f"added ({tz})", f"expires ({tz})", "state")
    table = []
    for r in rows:
        state = STATE_WORDS[r.state]
        if r.removed_by:
            state += f" by {r.removed_by} {_local(r.removed_at, app)}"
        table.append([str(r.id), r.phone, REASON_WORDS[r.reason], r.patient_name or "",
                      r.note, SOURCE_WORDS[r.source], r.added_by, _local(r.added_at, app),
                      _local(r.expires_at, app) or "never", state])
    print_columns(headers, table)


def print_columns(headers: tuple[str, ...], rows: list[list[str]]) -> None:
    """`rows` under `headers` in aligned columns; every cell shown verbatim (control and
    format characters as escapes, never interpreted by the terminal)."""
    cells = [[verbatim(c).plain for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for r in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@dnc.command("add")
@click.argument("phone")
@click.option("--reason", type=click.Choice([r.value for r in DncReason]),
              default=DncReason.PATIENT_REQUEST.value, show_default=True)
@click.option("--note", default="", help=f"Why, in words (at most {NOTE_MAX} characters).")
@click.option("--expires", type=click.DateTime(["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="The day calls may resume (from 00:00 hospital time). Default: never.")
@pass_app
def add_cmd(app: App, phone: str, reason: str, note: str, expires: dt.datetime | None) -> None:
    """Put PHONE on the list (any format the HIS sync reads, e.g. 138 0013 8000)."""
    number = _phone(app, phone)
    if len(note) > NOTE_MAX:
        raise click.BadParameter(f"at most {NOTE_MAX} characters", param_hint="--note")
    now = app.clock.now()
    ends = expiry(expires.date(), app.settings.hospital.default_timezone) if expires else None
    if ends is not None and ends <= now:
        raise click.BadParameter("must be a day after today", param_hint="--expires")
    why = DncReason(reason)
    with app.db.session() as s:
        if entry_in_force(s, number, why, now) is not None:
            click.echo(f"nothing changed: {number} is already on the list "
                       f"({REASON_WORDS[why]})")
            return
        entry = add(s, app.audit, phone=number, reason=why, source=DncSource.CLI,
                    actor=cli_actor(), now=now, note=note, expires_at=ends)
        entry_id = entry.id
    click.echo(f"{number} added to the do-not-call list (entry {entry_id}, "
               f"{REASON_WORDS[why]})")


@dnc.command("remove")
@click.argument("entry_id", metavar="ID", type=click.IntRange(1, 2**53))
@click.option("--why", required=True, help="Why the number may be called again (audited).")
@pass_app
def remove_cmd(app: App, entry_id: int, why: str) -> None:
    """Take entry ID (see `followup dnc list`) off the list."""
    with app.db.session() as s:
        change = remove(s, app.audit, entry_id, cli_actor(), app.clock.now(), why)
    click.echo(change.message if change.changed else f"nothing changed: {change.message}")


@dnc.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_app
def import_cmd(app: App, file: Path) -> None:
    """Add the numbers of a CSV file with the header line phone,reason,note,expires.

    \b
    Only phone is required; reason is patient_request (the default), wrong_number
    or other; expires is the day calls may resume (YYYY-MM-DD, hospital time).
    The file is UTF-8 (with or without a byte-order mark) or GBK/GB18030.
    Each bad line is printed as `line N: reason` and skipped; the good lines are
    added together in one transaction, audited once. Numbers already on the list
    for the same reason are not added twice.

    \b
    Exit status: 0 when every line was good, 1 when any line was bad (the good
    ones are still imported), 2 when the file was refused whole (no header, not
    text): nothing was imported.
    """
    text = decode_csv(file.read_bytes())
    hospital = app.settings.hospital
    with app.db.session() as s:
        result = import_csv(s, app.audit, text, cli_actor(), app.clock.now(),
                            hospital.default_region, timezone=hospital.default_timezone)
    for bad in result.bad:
        shown = f" ({verbatim(bad.value).plain})" if bad.value else ""
        click.echo(f"line {bad.line}: {PROBLEM_WORDS[bad.problem]}{shown}")
    click.echo(f"imported {result.imported}, already on the list {result.already_listed}, "
               f"bad lines {len(result.bad)}")
    if result.bad:
        raise click.exceptions.Exit(1)
