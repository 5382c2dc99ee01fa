"""Row parsing: each kind of bad row becomes a reject naming its field and reason."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core.enums import EncounterType, RejectReason, Sex
from hisync.dates import LocalTime, parse_date, parse_datetime
from hisync.encoding import ENCOUNTER_COLUMNS, PATIENT_COLUMNS
from hisync.mapping import DEFAULT_MAPPING, load_mapping
from hisync.records import Accepted, Duplicate, Reject
from hisync.rows import ParserConfig, RowParser

MAPPING = load_mapping(DEFAULT_MAPPING)
UTC = dt.UTC


def _parser(entity: str, encoding: str = "generic") -> RowParser:
    return RowParser(ParserConfig(MAPPING, encoding=encoding), entity)  # type: ignore[arg-type]


def patient_row(**over: Any) -> tuple[Any, ...]:
    base = {"patient_id": "P1", "mrn": "M1", "patient_name": "王芳", "sex_code": "2",
            "birth_date": "1950-05-01", "phone": "13800138000", "phone2": None, "lang": None,
            "deceased_flag": "0", "refuse_followup": "0", "updated_at": "2026-01-01 08:00:00"}
    base.update(over)
    return tuple(base[c] for c in MAPPING.patients.source_columns)


def encounter_row(**over: Any) -> tuple[Any, ...]:
    base = {"visit_no": "V1", "patient_id": "P1", "visit_type": "ZY", "dept_code": "0301",
            "doctor": "李明", "admit_time": "2026-01-01 08:00:00",
            "discharge_time": "2026-01-05 10:30:00", "diag_codes": "I21.0;i10",
            "proc_codes": "36.06", "discharge_way": "1", "updated_at": "2026-01-06 08:00:00"}
    base.update(over)
    return tuple(base[c] for c in MAPPING.encounters.source_columns)


def test_good_patient_is_typed() -> None:
    out = _parser("patients").parse_row(patient_row(phone="+86 138 0013 8000",
                                                    phone2="010-62345678", lang="en"))
    assert isinstance(out, Accepted) and out.key == "P1"
    rec = dict(zip(PATIENT_COLUMNS, out.values, strict=True))
    assert rec["sex"] is Sex.FEMALE and rec["birth_date"] == dt.date(1950, 5, 1)
    assert rec["phone"] == "+8613800138000" and rec["phone_alt"] == "+861062345678"
    assert rec["language"] == "en-US" and rec["timezone"] == "Asia/Shanghai"
    assert rec["deceased"] is False and rec["consent_phone"] is True


def test_good_encounter_converts_local_time_to_utc() -> None:
    out = _parser("encounters").parse_row(encounter_row())
    assert isinstance(out, Accepted) and out.link == "P1" and out.department == "CARD"
    rec = dict(zip(ENCOUNTER_COLUMNS, out.values, strict=True))
    assert rec["type"] is EncounterType.INPATIENT
    assert rec["admit_at"] == dt.datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert rec["discharge_at"] == dt.datetime(2026, 1, 5, 2, 30, tzinfo=UTC)
    assert rec["diagnoses"] == ["I21.0", "I10"] and rec["disposition"] == "home"


PATIENT_REJECTS = [
    ({"birth_date": "1965-13-45"}, "birth_date", RejectReason.UNPARSEABLE_DATE),
    ({"birth_date": "不详"}, "birth_date", RejectReason.UNPARSEABLE_DATE),
    ({"phone": "1380013800"}, "phone", RejectReason.INVALID_PHONE),
    ({"phone": None}, "phone", RejectReason.INVALID_PHONE),
    ({"phone2": "12"}, "phone_alt", RejectReason.INVALID_PHONE),
    ({"patient_name": "  "}, "name", RejectReason.MISSING_FIELD),
    ({"mrn": None}, "mrn", RejectReason.MISSING_FIELD),
    ({"patient_id": None}, "his_id", RejectReason.MISSING_FIELD),
    ({"updated_at": None}, "updated_at", RejectReason.MISSING_FIELD),
    ({"sex_code": "X"}, "sex", RejectReason.UNKNOWN_CODE),
    ({"deceased_flag": "maybe"}, "deceased", RejectReason.INVALID_VALUE),
    ({"lang": "Chinese!"}, "language", RejectReason.INVALID_VALUE),
]


@pytest.mark.parametrize(("change", "field", "reason"), PATIENT_REJECTS)
def test_patient_rejects(change: dict[str, Any], field: str, reason: RejectReason) -> None:
    row = patient_row(**change)
    out = _parser("patients").parse_row(row)
    assert isinstance(out, Reject), out
    assert (out.field, out.reason) == (field, reason)
    assert out.raw["patient_id"] == change.get("patient_id", "P1")
    assert set(out.raw) == set(MAPPING.patients.source_columns)
    assert out.detail


ENCOUNTER_REJECTS = [
    ({"admit_time": "2025-02-30 08:00:00"}, "admit_at", RejectReason.UNPARSEABLE_DATE),
    ({"discharge_time": "待定"}, "discharge_at", RejectReason.UNPARSEABLE_DATE),
    ({"dept_code": "9999"}, "department", RejectReason.UNKNOWN_DEPARTMENT),
    ({"dept_code": None}, "department", RejectReason.MISSING_FIELD),
    ({"visit_type": None}, "type", RejectReason.MISSING_FIELD),
    ({"visit_type": "XX"}, "type", RejectReason.UNKNOWN_CODE),
    ({"admit_time": None}, "admit_at", RejectReason.MISSING_FIELD),
    ({"patient_id": ""}, "patient_his_id", RejectReason.MISSING_FIELD),
    ({"discharge_time": "2025-12-31 08:00:00"}, "discharge_at", RejectReason.INVALID_VALUE),
    ({"diag_codes": "heart attack"}, "diagnoses", RejectReason.INVALID_VALUE),
    ({"discharge_way": "7"}, "disposition", RejectReason.UNKNOWN_CODE),
]


@pytest.mark.parametrize(("change", "field", "reason"), ENCOUNTER_REJECTS)
def test_encounter_rejects(change: dict[str, Any], field: str, reason: RejectReason) -> None:
    out = _parser("encounters").parse_row(encounter_row(**change))
    assert isinstance(out, Reject), out
    assert (out.field, out.reason) == (field, reason)


def test_duplicates_identical_collapse_conflicting_all_rejected() -> None:
    p = _parser("patients")
    same = [patient_row(), patient_row()]
    out = p.parse_batch(same)
    assert isinstance(out[0], Accepted) and out[1] == Duplicate("P1")
    conflict = [patient_row(), patient_row(phone="13900139000"), patient_row(patient_id="P2")]
    out = p.parse_batch(conflict)
    assert [type(o) for o in out] == [Reject, Reject, Accepted]
    assert all(o.reason is RejectReason.CONFLICTING_DUPLICATE for o in out[:2])  # type: ignore[union-attr]
    assert out[1].raw["phone"] == "13900139000"  # type: ignore[union-attr]


def test_same_key_later_watermark_is_an_update_not_a_conflict() -> None:
    rows = [patient_row(), patient_row(phone="13900139000", updated_at="2026-02-01 00:00:00")]
    out = _parser("patients").parse_batch(rows)
    assert all(isinstance(o, Accepted) for o in out)
    assert out[0].content_hash != out[1].content_hash  # type: ignore[union-attr]


def test_a_bad_row_beside_its_duplicate_keeps_its_own_reason() -> None:
    out = _parser("patients").parse_batch([patient_row(), patient_row(birth_date="x")])
    assert isinstance(out[0], Accepted)
    assert isinstance(out[1], Reject) and out[1].reason is RejectReason.UNPARSEABLE_DATE


def test_content_hash_same_for_both_encodings_and_ignores_formatting() -> None:
    a = _parser("encounters", "generic").parse_row(encounter_row())
    b = _parser("encounters", "sqlite").parse_row(
        encounter_row(admit_time="2026/01/01 08:00", diag_codes=" I21.0 , I10 "))
    assert isinstance(a, Accepted) and isinstance(b, Accepted)
    assert a.content_hash == b.content_hash
    c = _parser("encounters").parse_row(encounter_row(dept_code="0302"))
    assert isinstance(c, Accepted) and c.content_hash != a.content_hash


@pytest.mark.parametrize(("raw", "expected"), [
    ("1950-05-01", dt.date(1950, 5, 1)), ("1950/05/01", dt.date(1950, 5, 1)),
    ("19500501", dt.date(1950, 5, 1)), ("1950年5月1日", dt.date(1950, 5, 1)),
    ("1950-05-01 00:00:00", dt.date(1950, 5, 1)), ("01.05.1950", dt.date(1950, 5, 1)),
    ("1950-02-30", None), ("31/02/1970", None), ("unknown", None),
])
def test_parse_date(raw: str, expected: dt.date | None) -> None:
    assert parse_date(raw, ("%d.%m.%Y",)) == expected


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/New_York", "Asia/Seoul"])
@pytest.mark.parametrize("when", ["1988-07-01 12:00:00", "2026-03-08 02:30:00",
                                  "2026-07-01 12:00:00", "2026-11-01 01:30:00"])
def test_local_time_fast_path_matches_zoneinfo(zone: str, when: str) -> None:
    z = ZoneInfo(zone)
    naive = dt.datetime.fromisoformat(when)
    assert LocalTime(z).to_utc(naive) == naive.replace(tzinfo=z).astimezone(UTC)
    assert parse_datetime(when, (), LocalTime(z)) == parse_datetime(when, (), z)


def test_explicit_offsets_are_respected() -> None:
    got = parse_datetime("2026-01-01T08:00:00+09:00", (), LocalTime(ZoneInfo("Asia/Shanghai")))
    assert got == dt.datetime(2025, 12, 31, 23, 0, tzinfo=UTC)


def test_summarize_keeps_the_last_row_per_key_and_counts_the_rest() -> None:
    from hisync.records import summarize

    rows = [patient_row(), patient_row(),  # identical duplicate
            patient_row(phone="13900139000", updated_at="2026-02-01 00:00:00"),  # later wins
            patient_row(patient_id="P2", birth_date="bad")]
    batch = summarize(_parser("patients").parse_batch(rows))
    assert [(a[0], a[5]) for a in batch.accepted] == [("P1", 2)]
    assert batch.unchanged == 2 and len(batch.rejects) == 1
    assert batch.rejects[0].row_key == "P2"


def test_consent_to_a_voicemail_message_comes_from_its_column_and_is_no_by_default(
        tmp_path: Any) -> None:
    assert dict(zip(PATIENT_COLUMNS, _accepted(_parser("patients"), patient_row()),
                    strict=True))["voicemail_ok"] is False
    text = DEFAULT_MAPPING.read_text(encoding="utf-8").replace(
        "    refuse_followup: opt_out_phone\n",
        "    refuse_followup: opt_out_phone\n    vm_consent: voicemail_ok\n")
    path = tmp_path / "mapping.yaml"
    path.write_text(text, encoding="utf-8")
    mapping = load_mapping(path)
    parser = RowParser(ParserConfig(mapping, encoding="generic"), "patients")
    base = dict(zip(MAPPING.patients.source_columns, patient_row(), strict=True))
    for raw, agreed in (("是", True), ("0", False), (None, False)):
        row = tuple({**base, "vm_consent": raw}[c] for c in mapping.patients.source_columns)
        values = _accepted(parser, row)
        assert dict(zip(PATIENT_COLUMNS, values, strict=True))["voicemail_ok"] is agreed
    bad = tuple({**base, "vm_consent": "maybe"}[c] for c in mapping.patients.source_columns)
    out = parser.parse_row(bad)
    assert isinstance(out, Reject) and out.field == "voicemail_ok"


def _accepted(parser: RowParser, row: tuple[Any, ...]) -> tuple[Any, ...]:
    out = parser.parse_row(row)
    assert isinstance(out, Accepted), out
    return tuple(out.values)
