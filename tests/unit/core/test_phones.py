"""Phone normalisation: the fast path agrees with phonenumbers on everything it accepts."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from core.phones import fast_e164, library_e164, to_e164
from hisync.synthetic_data import LANDLINE_AREAS, MOBILE_PREFIXES

COMMON = [
    ("13800138000", "+8613800138000"),
    ("+86 138 0013 8000", "+8613800138000"),
    ("0086-13800138000", "+8613800138000"),
    ("8613800138000", "+8613800138000"),
    ("138-0013-8000", "+8613800138000"),
    ("010-62345678", "+861062345678"),
    ("(0755)23456789", "+8675523456789"),
    ("021 5432 1098", "+862154321098"),
]


@pytest.mark.parametrize(("raw", "e164"), COMMON)
def test_common_shapes_take_the_fast_path(raw: str, e164: str) -> None:
    assert fast_e164(raw) == e164
    assert library_e164(raw, "CN") == e164


@pytest.mark.parametrize("raw", ["+1 650 253 0000", "+82 10-2345-6789"])
def test_foreign_numbers_go_to_the_library(raw: str) -> None:
    assert fast_e164(raw) is None
    assert to_e164(raw) == library_e164(raw, "CN") and to_e164(raw) is not None


@pytest.mark.parametrize("raw", ["1380013800", "138001380001", "2345", "000-00000000", "未留",
                                 "12345678901", "", "+86"])
def test_invalid_numbers_are_none(raw: str) -> None:
    assert fast_e164(raw) is None
    assert to_e164(raw) is None


def test_national_forms_are_not_chinese_outside_cn() -> None:
    assert fast_e164("13800138000", region="US") is None
    assert fast_e164("+8613800138000", region="US") == "+8613800138000"


_digits = st.text(alphabet="0123456789", min_size=0, max_size=12)
_prefix = st.sampled_from(["", "+86", "0086", "86", "0", "+86 0", "00", "+", "1", "01"])
_sep = st.sampled_from(["", " ", "-"])
_mobile = st.builds(lambda p, rest: p + rest, st.sampled_from(
    [f"1{d}" for d in "0123456789"] + list(MOBILE_PREFIXES)),
    st.text(alphabet="0123456789", min_size=7, max_size=10))
_landline = st.builds(lambda a, rest: "0" + a[0] + rest,
                      st.sampled_from([*list(LANDLINE_AREAS), ("12", 8), ("179", 8)]),
                      st.text(alphabet="0123456789", min_size=6, max_size=9))


@st.composite
def phone_like(draw: st.DrawFn) -> str:
    body = draw(st.one_of(_mobile, _landline, _digits))
    prefix = draw(_prefix)
    sep = draw(_sep)
    if sep and len(body) > 6:
        body = body[:3] + sep + body[3:7] + sep + body[7:]
    return prefix + (sep if prefix else "") + body


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(phone_like())
@example("17951234567")  # carrier-select prefix: the library strips it, we must not accept
@example("01012345678")
@example("+86 010 62345678")
def test_fast_path_agrees_with_the_library(raw: str) -> None:
    fast = fast_e164(raw)
    if fast is not None:
        assert library_e164(raw, "CN") == fast


def test_fast_path_covers_generated_mobiles() -> None:
    # Not a speed test: a guard that the fast path is really used for plain mobiles.
    for prefix in MOBILE_PREFIXES:
        number = prefix + "12345678"
        assert fast_e164(number) == library_e164(number, "CN") == "+86" + number
