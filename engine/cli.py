"""`followup`: the command line. Each command parses its options, calls one service, prints.

Sub-commands live in `engine/commands/`, one module per concern.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from core.errors import FollowupError
from core.settings import load_settings
from engine.app import App, build_app
from engine.commands import COMMAND_MODULES


class LazyApp:
    """Settings are validated when a command first needs them, so `--help` always works."""

    def __init__(self, config: str | None, data_dir: str | None) -> None:
        self._config = config
        self._data_dir = data_dir
        self._app: App | None = None

    def get(self) -> App:
        if self._app is None:
            overrides: dict[str, Any] = {"data_dir": self._data_dir} if self._data_dir else {}
            self._app = build_app(load_settings(self._config, overrides=overrides))
        return self._app

    def close(self) -> None:
        if self._app is not None:
            self._app.close()


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
@click.pass_obj
def init(lazy: LazyApp) -> None:
    """Create the database, or bring an existing one up to date. Safe to run again."""
    app = lazy.get()
    app.db.migrate()
    click.echo(f"database ready: {app.settings.redacted()['database']['url']}")


@cli.command("config")
@click.pass_obj
def show_config(lazy: LazyApp) -> None:
    """Print the settings in force (passwords and keys are masked)."""
    import json

    click.echo(json.dumps(lazy.get().settings.redacted(), indent=2, ensure_ascii=False))


for _module in COMMAND_MODULES:
    _module.register(cli)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except FollowupError as exc:
        click.echo(f"error [{exc.code}]: {exc.message}", err=True)
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
