"""`followup tickets list|claim|close|release|reassign`: the worklist from the command line.

Each change acts as the named console user (`--user`) through the console's own
`WorklistService` and that user's principal (`console.access.load_principal`): the same
departments, the same permissions and the same audit entries (`user:<name>`) as in the
console. Times are the hospital's local time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.cells import cell_len
from sqlalchemy import select
from sqlalchemy.orm import Session

from console.access import Permission, Principal, load_principal
from console.forms import Disposition, DispositionForm, FormError, ReassignForm
from console.i18n import translate
from console.ticket_lists import WORKING, TicketQuery, TicketRow, list_tickets
from console.worklist import WorklistService
from core.calling_window import CallingRules, zone
from core.enums import Role, TicketStatus
from core.errors import NotFound
from core.store.models import Department, User
from engine.app import App
from engine.commands.verbatim import verbatim
from engine.context import pass_app

# The words shown for stored values: the console's English catalogue.
_LANG = "en"


def register(cli: click.Group) -> None:
    """Add this module's commands to the `followup` group."""
    cli.add_command(tickets)


@click.group()
def tickets() -> None:
    """The agents' tickets: list, claim, close with a disposition, release, reassign.

    \b
    Each change acts as a console user (--user), with that user's departments and
    rights, and is audited as that user.

    \b
    Examples:
      followup tickets list --mine --user zhang.wei
      followup tickets claim 12 --user zhang.wei
      followup tickets close 12 --user zhang.wei --disposition call_back \\
          --callback-at "2026-03-11 15:00"
      followup tickets reassign 12 --to li.na --user head.nurse
    """


def _service(app: App) -> WorklistService:
    s = app.settings
    rules = CallingRules.from_settings(s.hospital.calling_hours, s.dialer.holidays,
                                       s.dialer.max_calls_per_patient_per_day)
    return WorklistService(app.clock, app.audit, None, rules, s.hospital.default_timezone,
                           s.tickets.response_times())


def _user_id(session: Session, username: str) -> int:
    found = session.execute(select(User.id).where(User.username == username,
                                                  User.active.is_(True))).scalar()
    if found is None:
        raise NotFound(f"no active console user {username!r}")
    return int(found)


def _acting(app: App, session: Session, username: str) -> Principal:
    """The console user `username` acting on the worklist. Raises NotFound (no such active
    user) and PermissionDenied (the user may not work tickets)."""
    who = load_principal(session, _user_id(session, username), app.clock.now())
    if who is None:
        raise NotFound(f"no active console user {username!r}")
    return who.acting_as(Permission.WORKLIST)


@contextmanager
def _plain_form_errors() -> Iterator[None]:
    """A refused form value as one plain line, in words (the console's English)."""
    try:
        yield
    except FormError as exc:
        words = translate(_LANG, f"problem.{exc.problem}", **exc.values)
        raise click.ClickException(f"{exc.field}: {words}") from exc


def _every_department() -> Principal:
    """Whoever runs the command without --user reads every department's tickets (as
    `followup tasks` lists every call); it can change nothing."""
    return Principal(0, "cli", "cli", Role.ADMIN, frozenset({Role.ADMIN}), {}, None)


def _department_id(session: Session, code: str) -> int:
    found = session.execute(select(Department.id).where(Department.code == code)).scalar()
    if found is None:
        raise NotFound(f"no department with code {code!r}")
    return int(found)


@tickets.command("list")
@click.option("--status", type=click.Choice([s.value for s in TicketStatus]),
              help="Only tickets in this state. Default: open and claimed.")
@click.option("--department", metavar="CODE", help="Only this department, e.g. CARD.")
@click.option("--mine", is_flag=True, help="Only the tickets claimed by --user.")
@click.option("--user", metavar="NAME", help="List as this console user (their departments).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True,
              help="Show at most this many tickets.")
@pass_app
def list_cmd(app: App, status: str | None, department: str | None, mine: bool,
             user: str | None, limit: int) -> None:
    """List tickets, most urgent first (closed ones: newest first).

    \b
    Columns: ticket, age, when it is due (or was closed) in the hospital's
    time, state (OVERDUE past its response time, or how it was closed),
    reason, severity, patient, department, assignee, summary.
    """
    if mine and user is None:
        raise click.UsageError("--mine needs --user NAME")
    with app.db.session() as s:
        who = _acting(app, s, user) if user else _every_department()
        query = TicketQuery(frozenset({TicketStatus(status)}) if status else WORKING,
                            assigned_to=who.user_id if mine else None,
                            department_id=_department_id(s, department) if department else None,
                            limit=limit)
        rows = list_tickets(s, who, query)
    _print(app, rows)


def _print(app: App, rows: list[TicketRow]) -> None:
    """One line a ticket, columns aligned as `followup tasks` aligns them (by the cells a
    terminal gives each character: a Chinese name takes two a character)."""
    tz_name = app.settings.hospital.default_timezone
    tz = zone(tz_name)
    now = app.clock.now()
    headers = ("#", "age", f"due/closed ({tz_name})", "state", "reason", "severity",
               "patient", "dept", "assignee", "summary")
    lines = []
    for r in rows:
        n, unit = r.age(now)
        when = r.closed_at or r.due_at
        lines.append((
            str(r.id), f"{n} {unit}",
            when.astimezone(tz).strftime("%Y-%m-%d %H:%M") if when else "", _state(r, now),
            translate(_LANG, f"reason.{r.reason}"),
            translate(_LANG, f"sev.{r.severity}") if r.severity else "",
            verbatim(r.patient_name).plain, r.department, verbatim(r.assignee_name).plain,
            verbatim(r.summary).plain))
    widths = [max([cell_len(h)] + [cell_len(line[i]) for line in lines])
              for i, h in enumerate(headers)]
    for line in (headers, *lines):
        click.echo("  ".join(c + " " * (w - cell_len(c))
                             for c, w in zip(line, widths, strict=True)).rstrip())
    click.echo(f"{len(rows)} tickets")


def _state(r: TicketRow, now: dt.datetime) -> str:
    if r.status == TicketStatus.CLOSED:
        how = translate(_LANG, f"disp.{r.disposition}") if r.disposition else ""
        return f"{translate(_LANG, 'tstatus.closed')} ({how})" if how else \
            translate(_LANG, "tstatus.closed")
    word = translate(_LANG, f"tstatus.{r.status}")
    return f"{word}, OVERDUE" if r.overdue(now) else word


@tickets.command("claim")
@click.argument("ticket_id", type=int)
@click.option("--user", required=True, metavar="NAME", help="The console user claiming it.")
@pass_app
def claim_cmd(app: App, ticket_id: int, user: str) -> None:
    """Claim an open ticket."""
    with app.db.session() as s, _plain_form_errors():
        who = _acting(app, s, user)
        _service(app).claim(s, who, ticket_id)
    click.echo(f"ticket {ticket_id} claimed by {who.display_name} ({who.username})")


@tickets.command("close")
@click.argument("ticket_id", type=int)
@click.option("--user", required=True, metavar="NAME", help="The console user who claimed it.")
@click.option("--disposition", required=True, type=click.Choice([d.value for d in Disposition]),
              help="How it ended. deceased, refused and wrong_number stop the patient's "
                   "pending calls; call_back puts the call back at --callback-at.")
@click.option("--notes", default="", help="A note kept with the ticket.")
@click.option("--callback-at", metavar="'YYYY-MM-DD HH:MM'",
              help="call_back: when, in the hospital's local time.")
@pass_app
def close_cmd(app: App, ticket_id: int, user: str, disposition: str, notes: str,
              callback_at: str | None) -> None:
    """Close a ticket you claimed, with its disposition."""
    with _plain_form_errors():
        form = DispositionForm.parse({"disposition": disposition, "notes": notes,
                                      "callback_at": callback_at or ""})
        with app.db.session() as s:
            _service(app).close(s, _acting(app, s, user), ticket_id, form)
    done = translate(_LANG, f"disp.{form.disposition.value}")
    when = f" at {form.callback_at:%Y-%m-%d %H:%M} ({app.settings.hospital.default_timezone})" \
        if form.callback_at else ""
    click.echo(f"ticket {ticket_id} closed: {done}{when}")


@tickets.command("release")
@click.argument("ticket_id", type=int)
@click.option("--user", required=True, metavar="NAME",
              help="Who releases it: its assignee, or a supervisor of its department.")
@pass_app
def release_cmd(app: App, ticket_id: int, user: str) -> None:
    """Give a claimed ticket back to the team (open again)."""
    with app.db.session() as s, _plain_form_errors():
        _service(app).release(s, _acting(app, s, user), ticket_id)
    click.echo(f"ticket {ticket_id} is open again")


@tickets.command("reassign")
@click.argument("ticket_id", type=int)
@click.option("--to", "to_user", required=True, metavar="NAME",
              help="The console user who takes it over.")
@click.option("--user", required=True, metavar="SUPERVISOR",
              help="Who hands it over: a supervisor of its department, or its assignee.")
@pass_app
def reassign_cmd(app: App, ticket_id: int, to_user: str, user: str) -> None:
    """Hand a ticket to another user; it is claimed by them."""
    with app.db.session() as s, _plain_form_errors():
        who = _acting(app, s, user)
        target = _user_id(s, to_user)
        _service(app).reassign(s, who, ticket_id, ReassignForm(target))
        shown = s.execute(select(User.display_name).where(User.id == target)).scalar()
    click.echo(f"ticket {ticket_id} reassigned to {shown} ({to_user})")
