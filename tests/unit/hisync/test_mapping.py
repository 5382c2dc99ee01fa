"""Mapping files: the shipped one loads; every error names the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.enums import EncounterType, Sex
from core.errors import FileValidationError
from hisync.mapping import DEFAULT_MAPPING, load_mapping

GOOD = DEFAULT_MAPPING.read_text(encoding="utf-8")


def test_shipped_mapping_loads() -> None:
    m = load_mapping(DEFAULT_MAPPING)
    assert m.patients.table == "his_patients" and m.encounters.key == "visit_no"
    assert m.sex["1"] is Sex.MALE and m.encounter_type["ZY"] is EncounterType.INPATIENT
    assert len(m.departments) >= 5
    assert m.patients.source_columns[-1] == "updated_at"


def _error(tmp_path: Path, text: str) -> FileValidationError:
    path = tmp_path / "m.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FileValidationError) as info:
        load_mapping(path)
    assert info.value.path == str(path)
    return info.value


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_unknown_target_field_names_its_line(tmp_path: Path) -> None:
    text = GOOD.replace("    lang: language\n", "    lang: langauge\n")
    err = _error(tmp_path, text)
    assert err.field == "patients.fields.lang"
    assert err.line == _line_of(text, "lang: langauge")
    assert "langauge" in err.problem


def test_required_field_not_mapped(tmp_path: Path) -> None:
    text = GOOD.replace("    phone: phone\n", "")
    err = _error(tmp_path, text)
    assert err.field == "patients.fields" and "phone" in err.problem
    assert err.line == _line_of(text, "  fields:")


def test_bad_sex_code_value(tmp_path: Path) -> None:
    text = GOOD.replace('  "2": female', '  "2": woman')
    err = _error(tmp_path, text)
    assert err.field == "sex.2"
    assert err.line == _line_of(text, '"2": woman')


def test_table_and_query_together(tmp_path: Path) -> None:
    text = GOOD.replace("  table: his_encounters\n",
                        "  table: his_encounters\n  query: SELECT * FROM x\n")
    err = _error(tmp_path, text)
    assert err.field == "encounters" and "exactly one" in err.problem
    assert err.line == _line_of(text, "encounters:")


def test_key_must_map_to_his_id(tmp_path: Path) -> None:
    text = GOOD.replace("  key: visit_no", "  key: patient_id")
    err = _error(tmp_path, text)
    assert err.field == "encounters" and "his_id" in err.problem


def test_unknown_key_and_bad_format_and_department(tmp_path: Path) -> None:
    err = _error(tmp_path, GOOD + "colour: blue\n")
    assert err.field == "colour" and err.problem == "unknown key"
    assert err.line == len(GOOD.splitlines()) + 1
    text = GOOD.replace('  - "%Y/%m/%d"\n', '  - "YYYY/MM/DD"\n', 1)
    err = _error(tmp_path, text)
    assert err.field == "date_formats" and "strftime" in err.problem
    text = GOOD.replace("{code: ONCO, name: 肿瘤科,", "{code: ONCO,")
    err = _error(tmp_path, text)
    assert err.field == "departments.0501.name"
    assert err.line == _line_of(text, "code: ONCO")


def test_duplicate_target_and_yaml_syntax(tmp_path: Path) -> None:
    text = GOOD.replace("    phone2: phone_alt\n", "    phone2: phone\n")
    err = _error(tmp_path, text)
    assert err.field == "patients.fields.phone2" and "already mapped" in err.problem
    err = _error(tmp_path, "patients: [\n")
    assert err.field == "(syntax)" and err.line is not None
