"""`followup plan` and `followup tasks`: plan the follow-up calls and look at them."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import click

from core.calling_window import zone
from core.enums import TaskStatus
from engine.app import App
from engine.context import pass_app
from engine.planning import planning_service
from followup_rules.task_listing import TaskFilter, TaskLine, list_tasks


def register(cli: click.Group) -> None:
    """Add this module's commands to the `followup` group."""
    cli.add_command(plan)
    cli.add_command(tasks)


@click.command()
@click.option("--explain", "explain_patient", metavar="PATIENT",
              help="Do not plan; show, for one patient (HIS id or MRN), which rule made each "
                   "call and why the other rules did not apply.")
@click.option("--all", "everyone", is_flag=True,
              help="Re-plan every patient, not only those whose records changed. Use it after "
                   "editing the rule files or adding a script version.")
@click.option("--workers", type=click.IntRange(0, 64), default=None,
              help="For large runs (100,000 patients or more): helper processes that read and "
                   "plan while this one writes. 0 = none. Default: CPUs - 1.")
@pass_app
def plan(app: App, explain_patient: str | None, everyone: bool, workers: int | None) -> None:
    """Work out which follow-up calls are due, and when.

    \b
    Reads the patients and visits that changed since the last run (after
    `followup his sync`) and applies the follow-up rules to them:
      - creates the calls the rules ask for (e.g. a cardiology check 3, 7 and
        30 days after discharge), inside each patient's calling hours;
      - joins calls that fall on the same day into one call (a patient is
        called at most `rules.calls_per_patient_per_day` times a day);
      - cancels calls that must not happen any more: the patient died, asked
        not to be called, has no phone number, is back in hospital, or a newer
        visit replaced the old plan.
    Calls already made are never changed. Running it twice is harmless.

    \b
    Examples:
      followup plan                      plan what changed
      followup plan --all                re-plan everyone after changing the rules
      followup plan --explain 100234     why patient 100234 has (or has no) calls
    """
    service = planning_service(app, workers)
    if explain_patient:
        for line in service.explain(explain_patient).lines():
            click.echo(line)
        return
    counts = service.run(everyone=everyone)
    click.echo(f"patients planned:    {counts.patients}")
    click.echo(f"encounters examined: {counts.encounters}")
    click.echo(f"calls created:       {counts.created}")
    click.echo(f"merged into another call on the same day: {counts.merged}")
    if counts.released:
        click.echo(f"made separate calls again: {counts.released}")
    total = sum(counts.cancelled.values())
    click.echo(f"cancelled:           {total}")
    for reason, n in sorted(counts.cancelled.items()):
        click.echo(f"  {reason.replace('_', ' ')}: {n}")


@click.command()
@click.option("--status", type=click.Choice([s.value for s in TaskStatus]),
              help="Only calls in this state (pending = waiting to be called).")
@click.option("--department", metavar="CODE", help="Only this department, e.g. CARD.")
@click.option("--due-from", type=click.DateTime(["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="Only calls due on or after this day.")
@click.option("--due-to", type=click.DateTime(["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="Only calls due on or before this day.")
@click.option("--patient", metavar="ID", help="Only this patient (HIS id or MRN).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True,
              help="Show at most this many rows.")
@pass_app
def tasks(app: App, status: str | None, department: str | None, due_from: dt.datetime | None,
          due_to: dt.datetime | None, patient: str | None, limit: int) -> None:
    """List the planned follow-up calls, soonest first.

    \b
    Columns: call number, patient, department, rule, due day, calling hours,
    scripts the call asks (in order), state, and a note (attempts so far and
    how the last one went, at what hospital time; why it was cancelled; or
    which call it was joined into).

    \b
    Examples:
      followup tasks --status pending --due-to 2026-03-31
      followup tasks --department CARD --patient 100234
    """
    flt = TaskFilter(status=TaskStatus(status) if status else None, department=department,
                     due_from=due_from.date() if due_from else None,
                     due_to=due_to.date() if due_to else None, patient=patient, limit=limit)
    lines, total = list_tasks(app.db, flt)
    tz = zone(app.settings.hospital.default_timezone)
    headers = ("#", "patient", "dept", "rule", "due", "hours", "scripts", "state", "note")
    rows = [(str(t.task_id), t.patient_his_id, t.department, t.rule_id, t.due_date.isoformat(),
             t.window, " + ".join(t.scripts), f"{t.status} (paused)" if t.paused else t.status,
             _note(t, tz)) for t in lines]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    click.echo(f"{len(lines)} of {total} calls shown" if total > len(lines)
               else f"{total} calls")


def _note(line: TaskLine, tz: ZoneInfo) -> str:
    """The listing's note, with how the last call went and when (hospital time)."""
    last = line.last_attempt
    if last is None:
        return line.note
    return f"{line.note}, last: {last.words} {last.created_at.astimezone(tz):%m-%d %H:%M}"
