"""`followup prompts ...`: pre-render the scripts' static prompts to 8 kHz WAVs."""

from __future__ import annotations

from pathlib import Path

import click

from engine.app import App
from engine.context import pass_app
from ivr.prompt_build import build_static_prompts
from ivr.script_loader import load_scripts
from ivr.tts import build_prompt_audio


def register(cli: click.Group) -> None:
    """Add this module's commands to the `followup` group."""
    cli.add_command(prompts)


@click.group()
def prompts() -> None:
    """Prompt audio: what the patient hears."""


@prompts.command("build")
@click.option("--script", "script_ids", multiple=True, metavar="ID",
              help="Only this script (repeatable). Default: every script.")
@click.option("--locale", "locales", multiple=True, metavar="LOCALE",
              help="Only this locale, e.g. zh-CN (repeatable).")
@pass_app
def build(app: App, script_ids: tuple[str, ...], locales: tuple[str, ...]) -> None:
    """Synthesise every static prompt of every script into the prompt cache.

    Prompts that name the patient or the visit are made at call time. Safe to run again:
    only prompts not cached yet are synthesised.
    """
    settings = app.settings
    scripts = [s for s in load_scripts(Path(settings.scripts.dir))
               if (not script_ids or s.id in script_ids) and (not locales or s.locale in locales)]
    audio = build_prompt_audio(app.data_dir, settings.tts.engine, settings.tts.voice,
                               settings.tts.prompt_packs)
    hospital = settings.hospital

    def hospital_for(locale: str) -> str:
        return hospital.name if locale.startswith("zh") else hospital.name_en

    report = build_static_prompts(scripts, audio, hospital_for, hospital.emergency_number,
                                  hospital.callback_number)
    click.echo(f"{len(scripts)} script files, {report.prompts} static prompts: "
               f"{report.synthesised} synthesised ({report.audio_seconds:.1f} s of audio), "
               f"{report.cached} already cached, {report.from_pack} from prompt packs; "
               f"{report.dynamic} prompts depend on the patient and are made at call time")
    click.echo(f"cache: {audio.cache_dir}")
