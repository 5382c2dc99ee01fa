"""Rule files: the default set loads; every mistake names the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.enums import EncounterType
from core.errors import FileValidationError
from followup_rules.loader import load_rule_set, parse_rules_text

REPO = Path(__file__).resolve().parents[3]
DEFAULT_RULES = REPO / "followup_rules" / "rules"

GOOD = """\
defaults:
  calling_window: "09:00-11:30,14:00-19:30"
rules:
  - id: cardiology-post-discharge
    match:
      encounter_types: [inpatient]
      departments: [card]
      icd10_prefixes: [i21.0, I50]
      age: {min: 18}
    followups:
      - {offset: +3d, script: cardiology-post-discharge, priority: 20}
      - {offset: 30d, script: cardiology-post-discharge}
"""


def test_default_rule_set_loads_with_the_promised_rules() -> None:
    rules = load_rule_set([DEFAULT_RULES], "09:00-20:00")
    got = {r.rule_id: [f.offset_days for f in r.followups] for r in rules.rules}
    assert got == {
        "post-operative": [1],
        "cardiology-post-discharge": [3, 7, 30],
        "surgery-post-discharge": [3, 7, 30],
        "oncology-post-discharge": [3, 7, 30],
        "inpatient-satisfaction": [2],
        "outpatient-satisfaction": [1],
    }
    assert all(r.calling_window.format() == "09:00-11:30,14:00-19:30" for r in rules.rules)
    scripts = {f.script_id for r in rules.rules for f in r.followups}
    assert scripts == {"inpatient-satisfaction", "outpatient-satisfaction",
                       "cardiology-post-discharge", "post-operative",
                       "surgery-post-discharge", "oncology-post-discharge"}


def test_good_file_is_normalised() -> None:
    rules = parse_rules_text(GOOD, "good.yaml", "08:00-20:00")
    rule = rules.rules[0]
    assert rule.criteria.encounter_types == (EncounterType.INPATIENT,)
    assert rule.criteria.departments == ("CARD",)
    assert rule.criteria.icd10_prefixes == ("I210", "I50")
    assert rule.criteria.age_years is not None and rule.criteria.age_years.min == 18
    assert [(f.offset_days, f.priority, f.max_attempts) for f in rule.followups] == [
        (3, 20, 3), (30, 50, 3)]
    assert rule.source == "good.yaml:4"


def test_default_window_applies_when_the_file_names_none() -> None:
    text = GOOD.replace('defaults:\n  calling_window: "09:00-11:30,14:00-19:30"\n', "")
    rule = parse_rules_text(text, "x.yaml", "08:00-20:00").rules[0]
    assert rule.calling_window.format() == "08:00-20:00"


def _error(text: str) -> FileValidationError:
    with pytest.raises(FileValidationError) as info:
        parse_rules_text(text, "rules/bad.yaml", "09:00-20:00")
    return info.value


@pytest.mark.parametrize(("old", "new", "line", "field", "problem"), [
    ("      age: {min: 18}\n", "      age: {min: 18}\n      colour: red\n", 10,
     "rules.0.match.colour", "unknown key 'colour'"),
    ("offset: +3d", "offset: +3x", 11, "rules.0.followups.0.offset", "+3x"),
    ('"09:00-11:30,14:00-19:30"', '"25:00-26:00"', 2, "defaults.calling_window",
     "does not exist"),
    ("[inpatient]", "[inpatient, daycare]", 6, "rules.0.match.encounter_types.1",
     "unknown encounter type 'daycare'"),
    ("priority: 20", "priority: 500", 11, "rules.0.followups.0.priority", "1 to 100"),
    ("[i21.0, I50]", "[i21.0, 50]", 8, "rules.0.match.icd10_prefixes.1", "ICD-10"),
    ("{min: 18}", "{min: 80, max: 18}", 9, "rules.0.match.age", "greater than max"),
    ("    match:\n", "    mtch:\n", 5, "rules.0.mtch", "unknown key"),
    ("{offset: 30d,", "{offset: +3d,", 12, "rules.0.followups.1.offset", "appears twice"),
])
def test_bad_file_names_file_line_and_field(old: str, new: str, line: int, field: str,
                                            problem: str) -> None:
    assert old in GOOD
    err = _error(GOOD.replace(old, new, 1))
    assert err.path == "rules/bad.yaml"
    assert err.field == field
    assert err.line == line
    assert problem in err.problem
    assert str(err).startswith(f"rules/bad.yaml:{line}: {field}: ")


def test_missing_rules_and_syntax_errors() -> None:
    assert _error("defaults: {}\n").field == "rules"
    err = _error("rules:\n  - id: [unclosed\n")
    assert err.field == "(syntax)" and err.line is not None


def test_duplicate_rule_ids_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(GOOD, encoding="utf-8")
    with pytest.raises(FileValidationError, match="already defined") as info:
        load_rule_set([tmp_path], "09:00-20:00")
    assert info.value.path.endswith("b.yaml") and info.value.line == 4


def test_missing_path_is_reported(tmp_path: Path) -> None:
    with pytest.raises(FileValidationError, match="no such rule file"):
        load_rule_set([tmp_path / "nope.yaml"], "09:00-20:00")


def test_bad_default_calling_hours_names_the_setting() -> None:
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"hospital\.calling_hours"):
        load_rule_set([DEFAULT_RULES], "9am-5pm")


def test_a_rule_naming_a_missing_script_is_reported_at_its_line() -> None:
    from followup_rules.loader import check_scripts_exist

    rules = parse_rules_text(GOOD, "rules/x.yaml", "09:00-20:00")
    check_scripts_exist(rules, {"cardiology-post-discharge"}, "scripts/")
    with pytest.raises(FileValidationError, match="no script 'cardiology-post-discharge'") as info:
        check_scripts_exist(rules, {"post-operative"}, "scripts/")
    assert (info.value.path, info.value.line) == ("rules/x.yaml", 11)
