"""Scripts and answers as FHIR R4 resources, checked by fhir.resources."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from core.enums import QuestionKind
from fhir_r4.resources import (
    AnswerFact,
    FhirInvalid,
    FinishedFollowup,
    Identity,
    fhir_id,
    questionnaire,
    questionnaire_response,
)
from ivr.script_loader import load_scripts

SCRIPTS = Path(__file__).resolve().parents[3] / "scripts"
IDS = Identity()


def test_every_shipped_script_is_a_valid_questionnaire() -> None:
    scripts = load_scripts(SCRIPTS)
    assert scripts
    for script in scripts:
        q = questionnaire(script, IDS)
        assert q["url"] == f"urn:followup/Questionnaire/{script.id}"
        assert [i["linkId"] for i in q["item"]] == [x.id for x in script.questions]


def _followup(*answers: AnswerFact, completed: bool = True) -> FinishedFollowup:
    return FinishedFollowup(7, "cardio", 2, "zh-CN", "P1", "V1",
                            dt.datetime(2026, 3, 4, 2, 0, tzinfo=dt.UTC), completed, answers)


def test_each_kind_of_answer_takes_its_fhir_type() -> None:
    qr = questionnaire_response(_followup(
        AnswerFact("chest_pain", QuestionKind.YES_NO, "no", None),
        AnswerFact("wound", QuestionKind.CHOICE, "healing", None, "愈合良好"),
        AnswerFact("pain", QuestionKind.SCALE, "4", None),
        AnswerFact("sbp", QuestionKind.NUMBER, "135", None),
        AnswerFact("comment", QuestionKind.VOICE, None, "还行"),
        AnswerFact("comment2", QuestionKind.VOICE, None, None, note="no model"),
        AnswerFact("skipped", QuestionKind.NUMBER, None, None),
    ), IDS)
    assert [(i["linkId"], i["answer"][0]) for i in qr["item"]] == [
        ("chest_pain", {"valueBoolean": False}),
        ("wound", {"valueCoding": {"code": "healing", "display": "愈合良好"}}),
        ("pain", {"valueInteger": 4}),
        ("sbp", {"valueDecimal": 135.0}),
        ("comment", {"valueString": "还行"}),
        ("comment2", {"valueAttachment": {"contentType": "audio/wav", "title": "no model"}}),
    ]
    assert qr["questionnaire"] == "urn:followup/Questionnaire/cardio|2"
    assert (qr["id"], qr["status"]) == ("followup-7-cardio", "completed")
    assert qr["subject"]["identifier"]["value"] == "P1"
    assert questionnaire_response(_followup(completed=False), IDS)["status"] == "stopped"


def test_a_resource_the_specification_refuses_names_the_element() -> None:
    bad = FinishedFollowup(7, "bad id!", 2, "zh-CN", "P1", "V1",
                           dt.datetime(2026, 3, 4, tzinfo=dt.UTC), True, ())
    with pytest.raises(FhirInvalid, match=r"QuestionnaireResponse followup-7-bad id!: id: "):
        questionnaire_response(bad, IDS)


def test_long_names_still_make_distinct_valid_ids() -> None:
    long = "a" * 63
    ids = {fhir_id(f"followup-1234567890-{long}"), fhir_id(f"followup-1234567891-{long}")}
    assert len(ids) == 2 and all(len(i) <= 64 for i in ids)
