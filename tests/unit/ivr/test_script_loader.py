"""Scripts are rejected at load with file, line and field; the shipped scripts all load."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.enums import QuestionKind
from core.errors import FileValidationError
from ivr.catalog import scan_versions
from ivr.script_loader import load_script, load_scripts
from tests.unit.ivr.conftest import ALL_KINDS, write_script

REPO = Path(__file__).resolve().parents[3]

HEAD = """\
id: t
version: 1
locale: en-US
greeting: "Hello."
closing: "Bye."
questions:
"""


def load_text(tmp_path: Path, body: str) -> FileValidationError:
    path = write_script(tmp_path, HEAD + body, script_id="t")
    with pytest.raises(FileValidationError) as err:
        load_script(path)
    assert err.value.path == str(path)
    return err.value


def test_broken_template_names_file_line_and_field(tmp_path: Path) -> None:
    err = load_text(tmp_path, """\
  - id: a
    kind: yes_no
    text: "Hello {{ patient.name "
""")
    assert (err.line, err.field) == (9, "questions.0.text")
    assert "broken template" in err.problem


def test_unknown_question_kind(tmp_path: Path) -> None:
    err = load_text(tmp_path, """\
  - id: a
    kind: yes_no
    text: "ok?"
  - id: b
    kind: essay
    text: "write"
""")
    assert (err.line, err.field) == (11, "questions.1.kind")
    assert "essay" in err.problem


def test_when_on_unknown_question(tmp_path: Path) -> None:
    err = load_text(tmp_path, """\
  - id: a
    kind: yes_no
    text: "ok?"
    when: "nosuch == 'yes'"
""")
    assert (err.line, err.field) == (10, "questions.0.when")
    assert "unknown question 'nosuch'" in err.problem


def test_when_on_a_later_question(tmp_path: Path) -> None:
    err = load_text(tmp_path, """\
  - id: a
    kind: yes_no
    text: "ok?"
    when: "b"
  - id: b
    kind: yes_no
    text: "ok?"
""")
    assert err.field == "questions.0.when" and "asked later" in err.problem


def test_red_flag_on_unknown_question_and_bad_severity(tmp_path: Path) -> None:
    err = load_text(tmp_path, """\
  - id: a
    kind: yes_no
    text: "ok?"
    red_flag: {when: "value and zz", severity: high, action: ticket}
""")
    assert err.field == "questions.0.red_flag.when" and "zz" in err.problem
    err = load_text(tmp_path, """\
  - id: a
    kind: yes_no
    text: "ok?"
    red_flag: {when: "value", severity: dire}
""")
    assert err.field == "questions.0.red_flag.severity" and err.line == 10


def test_broken_condition(tmp_path: Path) -> None:
    err = load_text(tmp_path, """\
  - id: a
    kind: scale
    text: "rate"
    red_flag: {when: "value >=", severity: low}
""")
    assert "broken condition" in err.problem


@pytest.mark.parametrize("part", ["consent:\n  prompt", "identity:\n  prompt",
                                  "messages:\n  opening", "messages:\n  timeout"])
@pytest.mark.parametrize("variable", ["visit.diagnosis", "patient.name", "department"])
def test_private_facts_rejected_before_identity(tmp_path: Path, part: str,
                                                variable: str) -> None:
    """What may play before identity is verified names the hospital at most: the name, the
    department and the visit are private, wherever the prompt is written."""
    section, key = part.split(":\n  ")
    text = (HEAD + '  - {id: a, kind: yes_no, text: "ok?"}\n'
            + f'{section}:\n  {key}: "Hi {{{{ {variable} }}}} from {{{{ hospital }}}}"\n')
    if section == "consent":
        text += '  declined: "Bye."\n'
    path = write_script(tmp_path, text, script_id="t")
    with pytest.raises(FileValidationError) as err:
        load_script(path)
    assert err.value.field == f"{section}.{key}"
    assert "private" in err.value.problem and "hospital" in err.value.problem


def test_identity_check_cannot_be_turned_off(tmp_path: Path) -> None:
    path = write_script(tmp_path, HEAD + '  - {id: a, kind: yes_no, text: "ok?"}\n'
                        + "identity: false\n", script_id="t")
    with pytest.raises(FileValidationError) as err:
        load_script(path)
    assert err.value.field == "identity" and "cannot be turned off" in err.value.problem


def test_greeting_may_name_the_patient_and_a_script_without_consent_gets_the_default(
        tmp_path: Path) -> None:
    path = write_script(tmp_path, HEAD.replace('"Hello."', '"Hello {{ patient.name }}."')
                        + '  - {id: a, kind: yes_no, text: "ok?"}\n', script_id="t")
    script = load_script(path)
    assert script.greeting.variables == {"patient"}
    assert script.consent.prompt is script.message("consent_prompt")


def test_reserved_choice_key_and_unknown_key(tmp_path: Path) -> None:
    err = load_text(tmp_path, """\
  - id: a
    kind: choice
    text: "pick"
    options: [{key: "1", value: x}, {key: "9", value: y}]
""")
    assert err.field == "questions.0.options.1.key"
    err = load_text(tmp_path, """\
  - id: a
    kind: yes_no
    txt: "typo"
""")
    assert err.field == "questions.0.txt" and "unknown key" in err.problem


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    err = load_text(tmp_path, "  - id: a\n    kind: [yes_no\n")
    assert err.line is not None and err.field == "(syntax)"


def test_loaded_model(tmp_path: Path) -> None:
    script = load_script(write_script(tmp_path, ALL_KINDS.format(locale="en-US")))
    assert [q.kind for q in script.questions] == [
        QuestionKind.YES_NO, QuestionKind.CHOICE, QuestionKind.SCALE, QuestionKind.SCALE,
        QuestionKind.NUMBER, QuestionKind.MESSAGE, QuestionKind.VOICE]
    pain = script.question("pain")
    assert (pain.min, pain.max, pain.max_digits, pain.single_key) == (0, 10, 2, False)
    assert script.question("sat").single_key and script.question("sbp").max_digits == 3
    assert script.question("pain").when is not None
    assert not script.greeting.is_static and script.closing.is_static


def test_shipped_scripts_load_in_three_locales() -> None:
    scripts = load_scripts(REPO / "scripts")
    ids = {s.id for s in scripts}
    assert {"inpatient-satisfaction", "outpatient-satisfaction", "cardiology-post-discharge",
            "post-operative", "surgery-post-discharge", "oncology-post-discharge"} <= ids
    for version in scan_versions(REPO / "scripts"):
        assert version.locales == ("en-US", "ko-KR", "zh-CN")
    outpatient = next(s for s in scripts if s.id == "outpatient-satisfaction")
    assert {"service", "price", "environment", "food", "transport_parking", "comment"} <= {
        q.id for q in outpatient.questions}
    post_op = [v for v in scan_versions(REPO / "scripts") if v.script_id == "post-operative"]
    assert [(v.version, v.valid_from is None, v.valid_until is None) for v in post_op] == [
        (1, True, False), (2, False, True)]


_INDEXED = """\
  - id: overall
    kind: scale
    text: "How was it? 1 to 5."
  - id: again
    kind: yes_no
    text: "Come again?"
  - id: say
    kind: voice
    text: "Tell us."
"""


@pytest.mark.parametrize(("index", "field", "problem"), [
    ("[overall, nope]", "satisfaction_index.1", "no question 'nope'"),
    ("[overall, say]", "satisfaction_index.1", "not a scale or yes/no"),
    ("[overall, overall]", "satisfaction_index", "twice"),
    ("overall", "satisfaction_index", "list of question ids"),
])
def test_a_satisfaction_index_names_scale_or_yes_no_questions_of_its_script(
        tmp_path: Path, index: str, field: str, problem: str) -> None:
    err = load_text(tmp_path, _INDEXED + f"satisfaction_index: {index}\n")
    assert err.field == field and problem in err.problem


def test_satisfaction_index_and_option_labels_load(tmp_path: Path) -> None:
    path = write_script(tmp_path, HEAD + _INDEXED + "satisfaction_index: [overall, again]\n",
                        script_id="t")
    assert load_script(path).satisfaction_index == ("overall", "again")
    shipped = [s for s in load_scripts(REPO / "scripts") if s.id == "surgery-post-discharge"
               and s.locale == "zh-CN"]
    assert [o.label for o in shipped[0].question("wound").options] == [
        "愈合良好", "红肿", "渗液或出血"]
