"""Form parsing: bad input is refused with the field and the reason, before anything is
stored."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from console.forms import (
    CallSearch,
    Disposition,
    DispositionForm,
    FormError,
    GrantForm,
    QaFlag,
    QaForm,
    SampleForm,
    UserForm,
    integer,
    month,
    text,
)
from core.enums import Role

TODAY = dt.date(2026, 3, 10)


@pytest.mark.parametrize("value,problem", [
    ("<script>alert(1)</script>", "markup"),
    ("hello <b>there</b>", "markup"),
    ("<img src=x onerror=alert(1)>", "markup"),
    ("click javascript:alert(1)", "markup"),
    ("x" * 2001, "too_long"),
    ("bell\x07", "control_chars"),
])
def test_notes_refuse_markup_oversize_and_control_characters(value: str, problem: str) -> None:
    with pytest.raises(FormError) as err:
        DispositionForm.parse({"disposition": "reached_well", "notes": value})
    assert err.value.field == "notes" and err.value.problem == problem


def test_plain_chinese_and_english_notes_with_comparisons_are_kept() -> None:
    form = DispositionForm.parse({"disposition": "reached_well",
                                  "notes": "  血压 < 140，患者说 a>b 也可以\n第二行  "})
    assert form.notes == "血压 < 140，患者说 a>b 也可以\n第二行"
    assert form.disposition is Disposition.REACHED_WELL


def test_one_line_fields_refuse_newlines() -> None:
    with pytest.raises(FormError, match="one_line"):
        text({"name": "a\nb"}, "name", max_len=10)


@pytest.mark.parametrize("raw,problem", [("abc", "not_a_number"), ("6", "out_of_range"),
                                         ("0", "out_of_range"), ("1.5", "not_a_number"),
                                         ("", "not_a_number")])
def test_scores_must_be_whole_numbers_in_range(raw: str, problem: str) -> None:
    scores = {"score_identity": raw, "score_script": "5", "score_clarity": "5",
              "score_transcript": "5"}
    with pytest.raises(FormError) as err:
        QaForm.parse(scores, [])
    assert (err.value.field, err.value.problem) == ("score_identity", problem)


def test_qa_flags_are_a_closed_set_and_deduplicated() -> None:
    base = {f"score_{n}": "3" for n in ("identity", "script", "clarity", "transcript")}
    form = QaForm.parse(base, ["privacy", "privacy", "audio_poor"])
    assert form.flags == (QaFlag.AUDIO_POOR, QaFlag.PRIVACY)
    with pytest.raises(FormError, match="unknown_choice"):
        QaForm.parse(base, ["privacy", "made_up"])


def test_sample_form_refuses_future_days_and_rates_outside_1_100() -> None:
    ok = SampleForm.parse({"department_id": "1", "day": "2026-03-09", "rate_percent": "5"},
                          TODAY)
    assert ok == SampleForm(1, None, dt.date(2026, 3, 9), 5)
    with pytest.raises(FormError, match="in_future"):
        SampleForm.parse({"department_id": "1", "day": "2026-03-11", "rate_percent": "5"},
                         TODAY)
    with pytest.raises(FormError, match="out_of_range"):
        SampleForm.parse({"department_id": "1", "day": "", "rate_percent": "101"}, TODAY)
    with pytest.raises(FormError, match="unknown_choice"):
        SampleForm.parse({"department_id": "1", "script_id": "Robert'); DROP",
                          "rate_percent": "5"}, TODAY)


def test_user_form_checks_username_password_and_role() -> None:
    good = {"username": "li.na", "display_name": "李娜", "password": "ten-chars!",
            "role": "agent", "department_id": "2"}
    assert UserForm.parse(good).department_id == 2
    for field, value, problem in (("username", "Li Na", "bad_username"),
                                  ("password", "short", "too_short"),
                                  ("role", "root", "unknown_choice"),
                                  ("display_name", "<i>x</i>", "markup"),
                                  ("department_id", "x", "not_a_number")):
        with pytest.raises(FormError) as err:
            UserForm.parse({**good, field: value})
        assert (err.value.field, err.value.problem) == (field, problem)


def test_sysadmin_cannot_be_granted_and_days_are_bounded() -> None:
    with pytest.raises(FormError, match="not_grantable"):
        GrantForm.parse({"user_id": "1", "role": "sysadmin", "days": "1"})
    with pytest.raises(FormError, match="out_of_range"):
        GrantForm.parse({"user_id": "1", "role": "agent", "days": "31"})
    assert GrantForm.parse({"user_id": "1", "role": "agent", "days": "30"}).role is Role.AGENT


def test_month_and_search_parsing() -> None:
    assert month({"month": "2026-02"}, "month", default=TODAY) == dt.date(2026, 2, 1)
    assert month({}, "month", default=TODAY) == dt.date(2026, 3, 1)
    for bad in ("2026-13", "26-02", "2026-2x", "1999-12"):
        with pytest.raises(FormError, match="not_a_month"):
            month({"month": bad}, "month", default=TODAY)
    s = CallSearch.parse({"q": " 王 ", "page": "2", "date_from": "2026-03-01"})
    assert (s.q, s.page, s.date_from) == ("王", 2, dt.date(2026, 3, 1))
    with pytest.raises(FormError, match="not_a_date"):
        CallSearch.parse({"date_to": "2026-02-30"})


@given(st.text(max_size=300))
def test_any_text_is_either_refused_or_kept_without_markup(value: str) -> None:
    try:
        kept = text({"f": value}, "f", max_len=200, multiline=True)
    except FormError as err:
        assert err.field == "f"
        return
    assert len(kept) <= 200 and "<script" not in kept.lower()
    assert kept == value.strip()


@given(st.integers())
def test_integer_keeps_exactly_the_values_in_range(n: int) -> None:
    try:
        got = integer({"n": str(n)}, "n", low=-5, high=5)
    except FormError:
        assert not -5 <= n <= 5
        return
    assert got == n
