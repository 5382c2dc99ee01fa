"""`followup asterisk ...`: the Asterisk side of the engine."""

from __future__ import annotations

from pathlib import Path

import click

from dialer.asterisk import conf_render
from engine.app import App
from engine.context import pass_app


def register(cli: click.Group) -> None:
    cli.add_command(asterisk)


@click.group()
def asterisk() -> None:
    """Asterisk configuration for the follow-up engine."""


@asterisk.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the engine's Asterisk configuration into: pjsip.conf, "
                   "extensions.conf, manager.conf, queues.conf, cdr.conf, cdr_manager.conf, "
                   "amd.conf, and for a dedicated server asterisk.conf, modules.conf, "
                   "logger.conf and rtp.conf. With several [[asterisk.servers]], one "
                   "sub-folder per server, named after it.")
@click.option("--templates", "template_dir", type=click.Path(file_okay=False, exists=True,
                                                              path_type=Path),
              default=None, help="Template folder (default: asterisk-conf/ of the engine).")
@pass_app
def render(app: App, out_dir: Path, template_dir: Path | None) -> None:
    """Render the Asterisk configuration from the settings ([asterisk] in followup.toml).

    Every value is checked first (no line breaks, no ';'); the files hold the AMI and SIP
    secrets and are written readable by owner and group only.
    """
    settings = app.settings.asterisk
    names = conf_render.server_names(settings)
    targets: list[tuple[str | None, Path]] = [(n, out_dir / n) for n in names] or \
        [(None, out_dir)]
    rendered = [(conf_render.render(conf_render.validate(settings, name),
                                    template_dir or conf_render.DEFAULT_TEMPLATE_DIR), folder)
                for name, folder in targets]  # every server checked before any is written
    for files, folder in rendered:
        for path in conf_render.write(files, folder):
            click.echo(f"wrote {path}")
