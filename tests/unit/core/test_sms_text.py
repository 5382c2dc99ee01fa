"""The SMS alphabet, counter and parts (core.sms_text)."""

from __future__ import annotations

import pytest

from core.sms_text import (
    SmsEncoding,
    TooLong,
    count,
    decode_gsm7,
    encoding_of,
    split,
    strip_udh,
)


def _text_of(part_bytes: bytes, encoding: SmsEncoding, udh: bool) -> str:
    payload = strip_udh(part_bytes) if udh else part_bytes
    if encoding is SmsEncoding.UCS2:
        return payload.decode("utf-16-be")
    return decode_gsm7(payload)


@pytest.mark.parametrize(("body", "encoding"), [
    ("Your appointment: see link https://h.example/x?a=1", SmsEncoding.GSM7),
    ("Price €5 [ok] {x} ~ | ^ \\", SmsEncoding.GSM7),
    ("Ça va? Ñandù ßüÖ", SmsEncoding.GSM7),
    ("您好，请填写随访问卷", SmsEncoding.UCS2),
    ("ok 👍", SmsEncoding.UCS2),
    ("ç lower-case c cedilla is not GSM (only Ç is)", SmsEncoding.UCS2),
    ("backtick `", SmsEncoding.UCS2),
    ("acute ú is not GSM (only ù is)", SmsEncoding.UCS2),
])
def test_encoding_follows_the_gsm_default_alphabet_and_its_extension(
        body: str, encoding: SmsEncoding) -> None:
    assert encoding_of(body) is encoding


@pytest.mark.parametrize(("body", "segments"), [
    ("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3),
    ("随" * 70, 1), ("随" * 71, 2), ("随" * 134, 2), ("随" * 135, 3),
    ("", 1),
])
def test_segment_boundaries(body: str, segments: int) -> None:
    assert count(body).segments == segments


def test_gsm_extension_characters_count_two_septets() -> None:
    assert count("€" * 80) == (SmsEncoding.GSM7, 1, 80)  # 160 septets
    assert count("€" * 80 + "a").segments == 2  # 161 septets
    assert count("a" * 159 + "€").segments == 2


def test_an_emoji_counts_two_code_units_and_one_character() -> None:
    assert count("😀" * 35) == (SmsEncoding.UCS2, 1, 35)  # 70 code units
    assert count("😀" * 35 + "a").segments == 2


def test_counter_unpacks_as_the_queue_reads_it() -> None:
    encoding, segments, chars = count("您好")
    assert (encoding, segments, chars) == ("ucs2", 1, 2)


def test_a_long_chinese_message_splits_into_67_unit_parts_with_one_reference() -> None:
    body = "".join(chr(0x4E00 + i) for i in range(150))
    parts = split(body, reference=300)  # the reference is one octet: 300 & 0xFF
    assert [len(p.text) for p in parts] == [67, 67, 16]
    for number, part in enumerate(parts, start=1):
        assert part.udh
        assert part.short_message[:6] == bytes((5, 0, 3, 300 & 0xFF, 3, number))
        assert len(part.short_message) <= 6 + 134
    assert "".join(_text_of(p.short_message, p.encoding, p.udh) for p in parts) == body


def test_a_surrogate_pair_is_never_cut_between_parts() -> None:
    body = "a" * 66 + "😀" + "b" * 10  # the emoji would straddle units 67 and 68
    parts = split(body, reference=1)
    assert [p.text for p in parts] == ["a" * 66, "😀" + "b" * 10]
    for part in parts:  # each part decodes alone (strict UTF-16)
        strip_udh(part.short_message).decode("utf-16-be")


def test_a_gsm_escape_is_never_cut_from_its_character() -> None:
    body = "a" * 152 + "€" + "b" * 20  # € would take septets 153 and 154
    parts = split(body, reference=7)
    assert [p.text for p in parts] == ["a" * 152, "€" + "b" * 20]
    assert parts[0].short_message.endswith(b"a")
    assert strip_udh(parts[1].short_message)[:2] == bytes((0x1B, 0x65))
    assert [len(strip_udh(p.short_message)) for p in parts] == [152, 22]


def test_gsm_parts_carry_153_septets_and_round_trip() -> None:
    body = ("Hello [world] {x} €^|~\\ " * 20)[:400]
    parts = split(body, reference=9)
    assert all(len(strip_udh(p.short_message)) <= 153 for p in parts)
    assert "".join(_text_of(p.short_message, p.encoding, p.udh) for p in parts) == body


def test_a_single_part_message_has_no_header() -> None:
    (part,) = split("Reply TD to opt out", reference=1)
    assert not part.udh
    assert part.short_message == b"Reply TD to opt out"


def test_too_many_parts_is_refused() -> None:
    with pytest.raises(TooLong):
        split("随" * (67 * 255 + 1), reference=1)


def test_decode_gsm7_reads_the_extension_table() -> None:
    assert decode_gsm7(bytes((0x00, 0x1B, 0x65, 0x1B, 0x3C, 0x41))) == "@€[A"
