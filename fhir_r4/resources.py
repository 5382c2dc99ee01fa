"""Follow-ups as FHIR R4 resources: each script version a `Questionnaire`, each finished
follow-up a `QuestionnaireResponse`, validated with `fhir.resources` before they leave.

Why fhir.resources: maintained, pydantic models of every resource, so a resource that does
not match the specification (a wrong type, a missing required element) is refused here with
the element named, not by the hospital's FHIR server. Its 8.x releases carry R5 and R4B
(4.3); QuestionnaireResponse and Questionnaire are the same in R4 (4.0.1) and R4B for every
element written here, so the R4B models validate them.

Identifiers: the patient and the visit by their HIS ids (`his.fhir_system` names the HIS's
identifier system); a questionnaire by canonical URL `<base>/Questionnaire/<script id>` with
the script's version; a response's own id `followup-<task>-<script>`, so exporting again
gives the same ids and a server updates rather than duplicates.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from pydantic import ValidationError

from core.enums import QuestionKind, YesNo
from ivr.script_model import Script

# QuestionKind -> Questionnaire.item.type (R4 value set item-type)
ITEM_TYPE = {QuestionKind.YES_NO: "boolean", QuestionKind.CHOICE: "choice",
             QuestionKind.SCALE: "integer", QuestionKind.NUMBER: "decimal",
             QuestionKind.VOICE: "string", QuestionKind.MESSAGE: "display"}


@dataclass(frozen=True)
class Identity:
    """Where the engine's identifiers live in FHIR: the canonical base of its questionnaires
    and the identifier systems of the HIS's patient and visit ids."""

    base: str = "urn:followup"
    patient_system: str = "urn:followup:his:patient"
    encounter_system: str = "urn:followup:his:encounter"


@dataclass(frozen=True)
class AnswerFact:
    """One stored answer as the response needs it."""

    question_id: str
    kind: QuestionKind
    value: str | None
    transcript: str | None
    label: str | None = None  # a choice's label in the script
    note: str | None = None  # e.g. why a voice answer has no transcript


@dataclass(frozen=True)
class FinishedFollowup:
    """One script asked in a finished follow-up, with the answers it got."""

    task_id: int
    script_id: str
    script_version: int
    language: str
    patient_his_id: str
    encounter_his_id: str
    authored: dt.datetime  # aware; when the follow-up ended
    completed: bool  # the script ran to its end (else the response is `stopped`)
    answers: tuple[AnswerFact, ...]


def fhir_id(text: str) -> str:
    """`text` as a FHIR id (at most 64 characters): as it is when it fits, else its start
    and a digest of the whole, so two long names never share an id."""
    if len(text) <= 64:
        return text
    return f"{text[:47]}-{hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]}"


class FhirInvalid(ValueError):
    """A resource fhir.resources refuses: the first element and why."""


def _validated(model: type[Any], data: dict[str, Any]) -> dict[str, Any]:
    try:
        resource = model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise FhirInvalid(f"{data['resourceType']} {data.get('id', '')}: {where}: "
                          f"{first['msg']}") from None
    out: dict[str, Any] = resource.model_dump(mode="json", exclude_none=True)
    return out


def questionnaire(script: Script, ids: Identity) -> dict[str, Any]:
    """The script version as a Questionnaire (its questions' wording as the script's text
    templates, with their {{ placeholders }} as written)."""
    items = []
    for q in script.questions:
        item: dict[str, Any] = {"linkId": q.id, "text": q.text.source.strip(),
                                "type": ITEM_TYPE[q.kind]}
        if q.kind is QuestionKind.CHOICE:
            item["answerOption"] = [{"valueCoding": {"code": o.value,
                                                     "display": o.label or o.value}}
                                    for o in q.options]
        if q.when is not None:
            item["extension"] = [{"url": f"{ids.base}/StructureDefinition/asked-when",
                                  "valueString": q.when.source}]
        items.append(item)
    return _validated(Questionnaire, {
        "resourceType": "Questionnaire",
        "id": fhir_id(f"{script.id}-v{script.version}-{script.locale}"),
        "url": f"{ids.base}/Questionnaire/{script.id}", "version": str(script.version),
        "name": script.id.replace("-", "_"), "title": script.title, "status": "active",
        "language": script.locale, "subjectType": ["Patient"], "item": items})


def _answer(a: AnswerFact) -> dict[str, Any] | None:
    if a.value is None and not a.transcript:
        if a.kind is QuestionKind.VOICE:  # spoken, kept as audio, not (yet) transcribed
            return {"valueAttachment": {"contentType": "audio/wav",
                                        "title": a.note or "voice answer, not transcribed"}}
        return None
    if a.kind is QuestionKind.YES_NO and a.value in (YesNo.YES, YesNo.NO):
        return {"valueBoolean": a.value == YesNo.YES}
    if a.kind is QuestionKind.CHOICE and a.value is not None:
        return {"valueCoding": {"code": a.value, "display": a.label or a.value}}
    if a.kind is QuestionKind.SCALE and a.value is not None and a.value.lstrip("-").isdigit():
        return {"valueInteger": int(a.value)}
    if a.kind is QuestionKind.NUMBER and a.value is not None:
        try:
            return {"valueDecimal": float(a.value)}
        except ValueError:
            pass
    return {"valueString": a.transcript or a.value}


def questionnaire_response(f: FinishedFollowup, ids: Identity) -> dict[str, Any]:
    """The follow-up's answers to one script as a QuestionnaireResponse."""
    items = []
    for a in f.answers:
        answer = _answer(a)
        if answer is not None:
            items.append({"linkId": a.question_id, "answer": [answer]})
    return _validated(QuestionnaireResponse, {
        "resourceType": "QuestionnaireResponse",
        "id": fhir_id(f"followup-{f.task_id}-{f.script_id}"),
        "identifier": {"system": f"{ids.base}/task", "value": f"{f.task_id}/{f.script_id}"},
        "questionnaire": f"{ids.base}/Questionnaire/{f.script_id}|{f.script_version}",
        "status": "completed" if f.completed else "stopped",
        "subject": {"identifier": {"system": ids.patient_system, "value": f.patient_his_id}},
        "encounter": {"identifier": {"system": ids.encounter_system,
                                     "value": f.encounter_his_id}},
        "authored": f.authored.isoformat(), "language": f.language, "item": items})
