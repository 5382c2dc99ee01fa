"""FHIR, composed: the shipped scripts and the store -> NDJSON of Questionnaires and
QuestionnaireResponses, or the outbox and the hospital's FHIR server (`fhir_r4` builds,
validates, queues and delivers each resource)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from core.errors import ConfigError
from engine.app import App
from fhir_r4.http_server import HttpFhirServer
from fhir_r4.outbox import FhirServer, deliver, enqueue, unqueued_done_tasks
from fhir_r4.resources import Identity, questionnaire, questionnaire_response
from fhir_r4.store import Labels, finished_followups
from ivr.script_loader import load_scripts
from ivr.script_model import Script


@dataclass(frozen=True)
class ExportCounts:
    questionnaires: int
    responses: int


def _labels(app: App) -> tuple[list[Script], Labels]:
    """The shipped scripts, and their options' labels in the patient's language (else the
    hospital's)."""
    scripts = load_scripts(Path(app.settings.scripts.dir))
    labels = {(s.id, s.version, s.locale, q.id, o.value): o.label or None
              for s in scripts for q in s.questions for o in q.options}
    default = app.settings.hospital.default_language

    def label(script_id: str, version: int, language: str, question: str, value: str
              ) -> str | None:
        return labels.get((script_id, version, language, question, value)) or \
            labels.get((script_id, version, default, question, value))

    return scripts, label


def _identity(app: App) -> Identity:
    st = app.settings.fhir
    return Identity(st.base, st.patient_system, st.encounter_system)


@dataclass(frozen=True)
class PushReport:
    queued: int
    sent: int
    retried: int
    refused: int


def push(app: App, server: FhirServer | None = None) -> PushReport:
    """Queue what finished since the last push (and every script version once), then send
    what is due to the FHIR server (`fhir.server_url`). Raises ConfigError when no server
    is configured."""
    url = app.settings.fhir.server_url
    if server is None and not url:
        raise ConfigError("fhir.server_url", "no FHIR server: set fhir.server_url")
    ids = _identity(app)
    scripts, label = _labels(app)
    now = app.clock.now()
    with app.db.session() as session:
        queued = enqueue(session, [(None, questionnaire(s, ids)) for s in scripts], now)
        queued += enqueue(session, (
            (f.task_id, questionnaire_response(f, ids))
            for f in list(finished_followups(session, label, only=unqueued_done_tasks()))),
            now)
    own = server is None
    client: FhirServer = server or HttpFhirServer(url, app.settings.fhir.timeout_s)
    try:
        with app.db.session() as session:
            report = deliver(session, client, now)
    finally:
        if own and isinstance(client, HttpFhirServer):
            client.close()
    return PushReport(queued, report.sent, report.retried, report.refused)


def export_ndjson(app: App, out: Path) -> ExportCounts:
    """Every script version as a Questionnaire, then every finished follow-up's answers as
    QuestionnaireResponses, one JSON resource per line. Written to `out` only once all are
    built and valid (a temporary file renamed), so a failed export leaves no half file."""
    ids = _identity(app)
    scripts, label = _labels(app)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    responses = 0
    with partial.open("w", encoding="utf-8") as fh:
        for script in scripts:
            fh.write(json.dumps(questionnaire(script, ids), ensure_ascii=False) + "\n")
        with app.db.session() as session:
            for followup in finished_followups(session, label):
                fh.write(json.dumps(questionnaire_response(followup, ids),
                                    ensure_ascii=False) + "\n")
                responses += 1
    partial.replace(out)
    return ExportCounts(len(scripts), responses)
