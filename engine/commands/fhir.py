"""`followup fhir ...`: follow-ups as FHIR R4 resources for the hospital's systems."""

from __future__ import annotations

from pathlib import Path

import click

from engine import fhir_service
from engine.app import App
from engine.context import pass_app


def register(cli: click.Group) -> None:
    cli.add_command(fhir)


@click.group()
def fhir() -> None:
    """FHIR R4: questionnaires and the answers patients gave."""


@fhir.command()
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The NDJSON file to write (one resource per line).")
@pass_app
def export(app: App, out: Path) -> None:
    """Write every script version as a Questionnaire and every finished follow-up's answers
    as a QuestionnaireResponse, each checked against the FHIR R4 specification. Patients
    and visits are named by their HIS ids (settings fhir.patient_system and
    fhir.encounter_system). Running it again gives the same resource ids."""
    counts = fhir_service.export_ndjson(app, out)
    click.echo(f"{out}: {counts.questionnaires} questionnaires, {counts.responses} "
               "questionnaire responses")


@fhir.command()
@pass_app
def push(app: App) -> None:
    """Queue the follow-ups finished since the last push and send what is due to the FHIR
    server (setting fhir.server_url). A server that is down or failing is tried again on
    the next push (backoff up to an hour); nothing queued is lost. A resource the server
    refuses is kept with the server's reason and not sent again."""
    r = fhir_service.push(app)
    click.echo(f"{r.queued} queued, {r.sent} sent, {r.retried} to try again, "
               f"{r.refused} refused by the server")
