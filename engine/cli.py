"""`followup`: the command line. Each command parses its options, calls one service, prints.

Sub-commands live in `engine/commands/`, one module per concern.
"""

from __future__ import annotations

import sys

import click
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from core.errors import FollowupError
from engine.app import App
from engine.context import LazyApp, pass_app


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "-c", metavar="FILE", envvar="FOLLOWUP_CONFIG",
              help="Settings file (TOML). Default: ./followup.toml if it exists.")
@click.option("--data-dir", metavar="DIR",
              help="Where the default SQLite database, recordings and caches live.")
@click.pass_context
def cli(ctx: click.Context, config: str | None, data_dir: str | None) -> None:
    """Hospital follow-up engine (随访): finds the patients due a follow-up call, calls them,
    asks the question script, and hands what it could not finish to a person.

    \b
    A first run:
      followup init          create the database
      followup his sync      copy patients and visits from the hospital system
      followup plan          work out who is due a call, and when
      followup tasks         list the planned calls
    """
    lazy = LazyApp(config, data_dir)
    ctx.obj = lazy
    ctx.call_on_close(lazy.close)


@cli.command()
@pass_app
def init(app: App) -> None:
    """Create the database, or bring an existing one up to date. Safe to run again."""
    app.db.migrate()
    click.echo(f"database ready: {app.settings.redacted()['database']['url']}")


@cli.command("config")
@pass_app
def show_config(app: App) -> None:
    """Print the settings in force (passwords and keys are masked)."""
    import json

    click.echo(json.dumps(app.settings.redacted(), indent=2, ensure_ascii=False))


def _register_commands() -> None:
    # Imported here so command modules may import engine.cli / engine.context freely.
    from engine.commands import COMMAND_MODULES

    for module in COMMAND_MODULES:
        module.register(cli)


_register_commands()


def store_problem(exc: SQLAlchemyError) -> tuple[str, str]:
    """A database error as (code, one line): a store never initialised says what to run."""
    first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    text = first[0][:300] if first else type(exc).__name__
    if "no such table" in text or ("does not exist" in text and "relation" in text):
        return "store_not_initialised", f"the database has no tables yet ({text}): run " \
            "`followup init`"
    if isinstance(exc, OperationalError | InterfaceError):
        return "store_unavailable", f"the database cannot be used: {text}"
    return "store_error", f"the database refused: {text}"


def main() -> None:
    try:
        code = cli.main(standalone_mode=False)  # a command's Exit(n) comes back as n
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except FollowupError as exc:
        click.echo(f"error [{exc.code}]: {exc.message}", err=True)
        sys.exit(2)
    except SQLAlchemyError as exc:  # the store, met by a command: one line, no traceback
        code, message = store_problem(exc)
        click.echo(f"error [{code}]: {message}", err=True)
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    if isinstance(code, int) and code:
        sys.exit(code)
