"""`followup console`, `followup users ...`, `followup report monthly`."""

from __future__ import annotations

import getpass
from pathlib import Path

import click
from sqlalchemy import select

from console.access import Principal, role_scopes
from console.accounts import AccountService
from console.excel import Heading, report_workbook
from console.forms import FormError, GrantForm, UserForm, month
from console.i18n import LOCALES
from console.periods import last_finished_month, local_time
from console.questions import question_names
from console.report_text import figure_texts
from console.reports import ReportService
from core.enums import Role
from core.errors import NotFound
from core.store.models import Department, User
from engine.app import App
from engine.commands.doctor import preflight
from engine.console_app import ScriptWording
from engine.context import pass_app


def register(cli: click.Group) -> None:
    cli.add_command(console)
    cli.add_command(users)
    cli.add_command(report)


@click.command()
@click.option("--host", default=None, help="Address to listen on (default: console.host).")
@click.option("--port", type=int, default=None, help="Port (default: console.port).")
@click.option("--https-only", is_flag=True,
              help="Mark the session cookie Secure (behind a TLS proxy).")
@pass_app
def console(app: App, host: str | None, port: int | None, https_only: bool) -> None:
    """Serve the web console (worklist, spot-checks, reports, user admin)."""
    import uvicorn

    from engine.console_app import build_console

    listen = (host or app.settings.console.host, port or app.settings.console.port)
    preflight(app.settings, calls=False, store_ready=False, serve=listen)
    app.db.migrate()
    web = build_console(app, https_only=https_only)
    uvicorn.run(web, host=listen[0], port=listen[1], log_level="info",
                server_header=False, proxy_headers=False)


@click.group()
def users() -> None:
    """Console accounts: add, list, grant temporary rights."""


def _accounts(app: App) -> AccountService:
    return AccountService(app.clock, app.audit, app.settings.console.max_failed_logins)


def _department_id(app: App, code: str | None) -> int | None:
    if not code:
        return None
    with app.db.session() as s:
        found = s.execute(select(Department.id).where(Department.code == code)).scalar()
    if found is None:
        raise click.BadParameter(f"no department with code {code!r}", param_hint="--department")
    return int(found)


def _form_problem(exc: FormError) -> click.ClickException:
    return click.ClickException(f"{exc.field}: {exc.problem}")


@users.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--name", "display_name", required=True, help="Display name.")
@click.option("--department", metavar="CODE", help="Department code (required for "
              "dept_manager; supervisors and agents without one see every department).")
@click.password_option(help="Password (asked for when not given; at least 10 characters).")
@pass_app
def users_add(app: App, username: str, role: str, display_name: str, department: str | None,
              password: str) -> None:
    """Add a console user (argon2-hashed password; audited)."""
    dept = _department_id(app, department)
    try:
        form = UserForm.parse({"username": username, "display_name": display_name,
                               "password": password, "role": role,
                               "department_id": str(dept) if dept else ""})
        with app.db.session() as s:
            user = _accounts(app).create_user(s, form, "cli")
            uid = user.id
    except FormError as exc:
        raise _form_problem(exc) from exc
    click.echo(f"user {username} added (id {uid}, role {role})")


@users.command("list")
@pass_app
def users_list(app: App) -> None:
    """List users, their roles, departments, and unexpired grants."""
    with app.db.session() as s:
        rows = _accounts(app).users(s)
        codes = {int(i): str(c) for i, c in s.execute(select(Department.id, Department.code))}
    for user, grants in rows:
        state = "active" if user.active else "inactive"
        dept = codes.get(user.department_id, "*") if user.department_id else "*"
        extra = "; ".join(f"{g.role.value}@{codes.get(g.department_id or 0, '*')} until "
                          f"{g.expires_at:%Y-%m-%d %H:%M}" for g in grants)
        click.echo(f"{user.username:20} {user.role.value:13} {dept:10} {state:8} {extra}")


@users.command("grant")
@click.argument("username")
@click.option("--role", type=click.Choice([r.value for r in Role if r is not Role.SYSADMIN]),
              required=True)
@click.option("--department", metavar="CODE")
@click.option("--days", type=click.IntRange(1, 30), default=7, show_default=True)
@click.option("--by", "granted_by", required=True, metavar="SYSADMIN",
              help="The system administrator granting the right.")
@pass_app
def users_grant(app: App, username: str, role: str, department: str | None, days: int,
                granted_by: str) -> None:
    """Grant a temporary right (a role, optionally in another department)."""
    dept = _department_id(app, department)
    with app.db.session() as s:
        user = s.execute(select(User).where(User.username == username)).scalar_one_or_none()
        admin = s.execute(select(User).where(User.username == granted_by)).scalar_one_or_none()
        if user is None:
            raise click.BadParameter(f"no user {username!r}", param_hint="USERNAME")
        if admin is None or admin.role is not Role.SYSADMIN:
            raise click.BadParameter(f"{granted_by!r} is not a system administrator",
                                     param_hint="--by")
        try:
            form = GrantForm.parse({"user_id": str(user.id), "role": role,
                                    "department_id": str(dept) if dept else "",
                                    "days": str(days)})
            grant = _accounts(app).grant(s, form, admin.id, f"user:{admin.username}")
        except FormError as exc:
            raise _form_problem(exc) from exc
        until = grant.expires_at
    click.echo(f"granted {role} to {username} until {until:%Y-%m-%d %H:%M} UTC")


@click.group()
def report() -> None:
    """Reports computed from the store."""


def _system_principal() -> Principal:
    return Principal(0, "cli", "cli", Role.ADMIN, frozenset({Role.ADMIN}),
                     role_scopes(Role.ADMIN, None), None)


@report.command("snapshots")
@click.option("--months", type=click.IntRange(1, 36), default=12, show_default=True)
@pass_app
def report_snapshots(app: App, months: int) -> None:
    """Keep the figures of finished months for every department (run nightly, so the first
    report of a month does not compute a year of answers)."""
    index = ScriptWording(Path(app.settings.scripts.dir)).satisfaction_index()
    svc = ReportService(app.clock, app.settings.hospital.default_timezone, index)
    with app.db.session() as s:
        ids = list(s.execute(select(Department.id).order_by(Department.id)).scalars())
    for dept_id in ids:
        with app.db.session() as s:
            svc.store_finished_months(s, dept_id, months)
    click.echo(f"report snapshots kept for {len(ids)} departments, last {months} finished "
               "months")


@report.command("monthly")
@click.option("--department", metavar="CODE", required=True)
@click.option("--month", "month_text", metavar="YYYY-MM",
              help="Default: the last finished month.")
@click.option("--excel", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the report as an Excel workbook.")
@click.option("--lang", type=click.Choice(LOCALES),
              help="The workbook's language. Default: the hospital's.")
@pass_app
def report_monthly(app: App, department: str, month_text: str | None,
                   excel: Path | None, lang: str | None) -> None:
    """The monthly satisfaction report of one department."""
    tz = app.settings.hospital.default_timezone
    try:
        first = month({"month": month_text or ""}, "month",
                      default=last_finished_month(app.clock.now(), tz))
    except FormError as exc:
        raise click.BadParameter("expected YYYY-MM", param_hint="--month") from exc
    dept = _department_id(app, department)
    assert dept is not None
    wording = ScriptWording(Path(app.settings.scripts.dir))
    with app.db.session() as s:
        try:
            rep = ReportService(app.clock, tz, wording.satisfaction_index()).monthly(
                s, _system_principal(), dept, first)
        except NotFound as exc:
            raise click.ClickException(exc.message) from exc
    f = rep.figures
    rate = "suppressed" if f.response_rate is None else f"{f.response_rate:.1%}"
    click.echo(f"{rep.department_code} {rep.department_name} {rep.month}: eligible {f.eligible}, "
               f"responded {f.responded} ({rate}), failed {f.failed}, stopped {f.stopped}, "
               f"open {f.still_open}, satisfaction index "
               + ("suppressed" if f.satisfaction is None else
                  f"{f.satisfaction:.1f} [{f.satisfaction_low:.1f}, {f.satisfaction_high:.1f}]"
                  f" over {f.satisfaction_calls} calls"))
    shown = figure_texts(rep.questions, "en", wording)
    for q in rep.questions:
        click.echo(f"  {q.key:45} n={q.n:<6} {q.kind:7} {shown[q.key]}")
    if excel is not None:
        locale = lang or ("zh" if app.settings.hospital.default_language.startswith("zh")
                          else "en")
        names = question_names(wording, [(q.script_id, q.question_id) for q in rep.questions],
                               locale)
        hospital = app.settings.hospital
        head = Heading(hospital=hospital.name if locale == "zh" else hospital.name_en,
                       locale=locale, generated_at=local_time(app.clock.now(), tz),
                       generated_by=f"{getpass.getuser()} (followup report monthly)")
        excel.write_bytes(report_workbook(rep, names, head,
                                          figure_texts(rep.questions, locale, wording)))
        click.echo(f"written {excel}")


