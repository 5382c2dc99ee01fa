"""FHIR export, composed: the shipped scripts and the store -> NDJSON of Questionnaires and
QuestionnaireResponses (`fhir_r4` builds and validates each resource)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from engine.app import App
from fhir_r4.resources import Identity, questionnaire, questionnaire_response
from fhir_r4.store import finished_followups
from ivr.script_loader import load_scripts


@dataclass(frozen=True)
class ExportCounts:
    questionnaires: int
    responses: int


def export_ndjson(app: App, out: Path) -> ExportCounts:
    """Every script version as a Questionnaire, then every finished follow-up's answers as
    QuestionnaireResponses, one JSON resource per line. Written to `out` only once all are
    built and valid (a temporary file renamed), so a failed export leaves no half file."""
    st = app.settings.fhir
    ids = Identity(st.base, st.patient_system, st.encounter_system)
    scripts = load_scripts(Path(app.settings.scripts.dir))
    labels = {(s.id, s.version, s.locale, q.id, o.value): o.label or None
              for s in scripts for q in s.questions for o in q.options}
    default = app.settings.hospital.default_language

    def label(script_id: str, version: int, language: str, question: str, value: str
              ) -> str | None:
        return labels.get((script_id, version, language, question, value)) or \
            labels.get((script_id, version, default, question, value))

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
