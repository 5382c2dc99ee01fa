"""`followup campaign pause|resume|status`: steer calling while `followup run` works.

A pause is stored (`core.campaign_holds`) and obeyed by every dialer process at its next
claim; calls in progress finish normally. Each change is audited as `cli:<login name>`.
"""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.calling_window import zone
from core.campaign_holds import (
    HoldChange,
    HoldRow,
    HoldTarget,
    holds_in_force,
    list_holds,
    pause,
    resume,
)
from core.enums import HoldScope, TaskStatus
from core.errors import NotFound
from core.store.models import Department, FollowupTask
from engine.app import App
from engine.commands.verbatim import verbatim
from engine.context import cli_actor, pass_app


def register(cli: click.Group) -> None:
    cli.add_command(campaign)


@click.group()
def campaign() -> None:
    """Pause and resume calling: everything, one department or one script.

    \b
    Examples:
      followup campaign pause --department CARD --reason "ward round"
      followup campaign resume --department CARD
      followup campaign pause --all --reason "trunk maintenance"
      followup campaign status
    """


def _target_options(f: click.decorators.FC) -> click.decorators.FC:
    f = click.option("--script", metavar="ID", help="Only calls asking this script.")(f)
    f = click.option("--department", metavar="CODE", help="Only this department, e.g. CARD.")(f)
    return click.option("--all", "everything", is_flag=True, help="All calling.")(f)


def _target(session: Session, everything: bool, department: str | None,
            script: str | None) -> HoldTarget:
    if sum((everything, department is not None, script is not None)) != 1:
        raise click.UsageError("name exactly one of --all, --department or --script")
    if everything:
        return HoldTarget(HoldScope.ALL)
    if department is not None:
        dept_id = session.execute(select(Department.id).where(Department.code == department)
                                  ).scalar_one_or_none()
        if dept_id is None:
            raise NotFound(f"no department with code {department!r}")
        return HoldTarget(HoldScope.DEPARTMENT, department_id=dept_id)
    return HoldTarget(HoldScope.SCRIPT, script_id=script)


def _report(change: HoldChange) -> None:
    click.echo(change.message if change.changed else f"nothing changed: {change.message}")


@campaign.command("pause")
@_target_options
@click.option("--reason", required=True, help="Why (shown on the wallboard, audited).")
@pass_app
def pause_cmd(app: App, everything: bool, department: str | None, script: str | None,
              reason: str) -> None:
    """Stop placing new calls for the target; calls in progress finish normally."""
    with app.db.session() as s:
        change = pause(s, app.audit, _target(s, everything, department, script),
                       reason=reason, actor=cli_actor(), now=app.clock.now())
    _report(change)


@campaign.command("resume")
@_target_options
@click.option("--reason", default="", help="Why (audited).")
@pass_app
def resume_cmd(app: App, everything: bool, department: str | None, script: str | None,
               reason: str) -> None:
    """Resume calling for the target (other pauses stay in force)."""
    with app.db.session() as s:
        change = resume(s, app.audit, _target(s, everything, department, script),
                        actor=cli_actor(), now=app.clock.now(), reason=reason)
    _report(change)


def _what(h: HoldRow) -> str:
    if h.scope is HoldScope.ALL:
        return "all calling"
    if h.scope is HoldScope.DEPARTMENT:
        return f"department {h.department_code} {h.department_name or ''}".rstrip()
    return f"script {h.script_id}"


@campaign.command("status")
@pass_app
def status(app: App) -> None:
    """The pauses in force (what, why, who, since when) and the calls due now that they
    hold back, per department."""
    tz = zone(app.settings.hospital.default_timezone)
    now = app.clock.now()
    with app.db.session() as s:
        holds = list_holds(s)
        in_force = holds_in_force(s)
        due = s.execute(select(Department.code, FollowupTask.department_id,
                               FollowupTask.script_id, func.count())
                        .join(Department, Department.id == FollowupTask.department_id)
                        .where(FollowupTask.status == TaskStatus.PENDING,
                               FollowupTask.next_attempt_at <= now)
                        .group_by(Department.code, FollowupTask.department_id,
                                  FollowupTask.script_id)).all()
    out = Console(highlight=False, soft_wrap=True)
    if not holds:
        out.print("calling is not paused")
    else:
        table = Table(title="Pauses in force", title_justify="left")
        for col in ("what", "reason", "by", f"since ({app.settings.hospital.default_timezone})"):
            table.add_column(col)
        for h in holds:
            table.add_row(verbatim(_what(h)), verbatim(h.reason), verbatim(h.held_by),
                          h.held_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"))
        out.print(table)
    by_dept: dict[str, list[int]] = {}
    for code, dept_id, script_id, n in due:
        counts = by_dept.setdefault(code, [0, 0])
        counts[1 if in_force.covers(dept_id, (script_id,)) else 0] += n
    table = Table(title="Calls due now", title_justify="left")
    for col in ("department", "to call", "paused"):
        table.add_column(col)
    for code in sorted(by_dept):
        ready, held = by_dept[code]
        table.add_row(verbatim(code), str(ready), str(held))
    out.print(table)
