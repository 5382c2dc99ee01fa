"""`followup patient-web`: serve the patient's questionnaire (the links in messages open
it), on its own address and port, apart from the console."""

from __future__ import annotations

from pathlib import Path

import click
from starlette.applications import Starlette

from engine.app import App
from engine.context import pass_app
from engine.sms_service import link_key
from ivr.script_library import ScriptLibrary
from ivr.script_loader import load_scripts
from patient_web.app import create_app
from patient_web.deps import PatientWebDeps
from patient_web.questionnaire import HospitalFacts, Questionnaire


def register(cli: click.Group) -> None:
    cli.add_command(patient_web)


def build_patient_web(app: App) -> Starlette:
    """The questionnaire app from the settings. Its key checks the links `followup run`
    signs (`engine.sms_service.link_key`: the setting, else the data folder's key file);
    raises ConfigError for a configured key too short to trust."""
    s = app.settings
    key = link_key(app)
    h = s.hospital
    library = ScriptLibrary(load_scripts(Path(s.scripts.dir)), h.default_language)
    questionnaire = Questionnaire(
        app.db, app.clock, app.audit, library,
        HospitalFacts(name=h.name, name_en=h.name_en, language=h.default_language,
                      emergency_number=h.emergency_number, callback_number=h.callback_number),
        key, s.patient_web.max_identity_failures, s.tickets.response_times())
    return create_app(PatientWebDeps(
        questionnaire=questionnaire, library=library, key=key, hospital=h.name,
        hospital_en=h.name_en, requests_per_minute=s.patient_web.requests_per_minute,
        secure_cookies=s.patient_web.public_url.startswith("https://")))


@click.command("patient-web")
@click.option("--host", default=None, help="Address to listen on (default: patient_web.host).")
@click.option("--port", type=int, default=None, help="Port (default: patient_web.port).")
@pass_app
def patient_web(app: App, host: str | None, port: int | None) -> None:
    """Serve the patients' web questionnaire (the one-time links sent by SMS)."""
    import uvicorn

    web = build_patient_web(app)
    app.db.migrate()
    # no access log: a request line carries the link's token
    uvicorn.run(web, host=host or app.settings.patient_web.host,
                port=port or app.settings.patient_web.port, log_level="info",
                access_log=False, server_header=False, proxy_headers=False)
