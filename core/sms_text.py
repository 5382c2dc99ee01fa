"""How an SMS body travels: its alphabet, how many parts it takes, and the parts themselves.

A body that fits the GSM 03.38 default alphabet (with its extension table, whose
characters take two septets: an escape and the character) goes as GSM-7; anything else
(Chinese, emoji) as UCS-2, where a character outside the Basic Multilingual Plane takes two
UTF-16 code units. One message carries 160 septets or 70 code units; a longer body is
sent in parts with a concatenation header (UDH, 8-bit reference), leaving 153 septets or
67 code units per part. A part never ends between the two halves of a surrogate pair or
between a GSM escape and its character, so every part decodes on its own.

`count` is the console's character and segment counter and what the queue stores;
`split` gives the SMPP adapter each part's `short_message` (GSM-7 unpacked, one septet per
octet, as SMPP carries the SMSC default alphabet; UCS-2 as UTF-16BE). `decode` reads a
received `short_message` back. Pure: no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple


class SmsEncoding(enum.StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"


# GSM 03.38 default alphabet, by septet value; 0x1B is the escape to the extension table.
_GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_ESCAPE = 0x1B
_GSM_EXTENSION = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C,
                  "~": 0x3D, "]": 0x3E, "|": 0x40, "€": 0x65}
_BASIC_SEPTET = {char: index for index, char in enumerate(_GSM_BASIC) if index != _ESCAPE}
_GSM_CHARS = frozenset(_BASIC_SEPTET) | frozenset(_GSM_EXTENSION)
_EXTENSION_CHAR = {septet: char for char, septet in _GSM_EXTENSION.items()}

# (units in a single message, units per part of a concatenated one)
_LIMITS = {SmsEncoding.GSM7: (160, 153), SmsEncoding.UCS2: (70, 67)}
_MAX_PARTS = 255  # the UDH's part count is one octet


class SmsCount(NamedTuple):
    """What the counter shows: the alphabet, the parts, and the characters as written."""

    encoding: SmsEncoding
    segments: int  # parts the body is sent in (an empty body still makes one message)
    chars: int  # characters as the reader sees them (an emoji or `€` is one)


@dataclass(frozen=True, slots=True)
class SmsSegment:
    """One part as submitted: `short_message` carries the UDH first when `udh` is set."""

    encoding: SmsEncoding
    text: str
    short_message: bytes
    udh: bool


class TooLong(ValueError):
    """A body that would need more than 255 parts (no gateway takes it)."""


def encoding_of(body: str) -> SmsEncoding:
    """GSM-7 when every character is in the default alphabet or its extension, else UCS-2."""
    if _GSM_CHARS.issuperset(body):
        return SmsEncoding.GSM7
    return SmsEncoding.UCS2


def _unit_size(char: str, encoding: SmsEncoding) -> int:
    """Septets (GSM-7) or UTF-16 code units (UCS-2) one character takes."""
    if encoding is SmsEncoding.GSM7:
        return 2 if char in _GSM_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


def _units(body: str, encoding: SmsEncoding) -> int:
    if encoding is SmsEncoding.UCS2:
        return len(body.encode("utf-16-le")) // 2
    return len(body) + sum(body.count(char) for char in _GSM_EXTENSION)


def _chunks(body: str, encoding: SmsEncoding) -> list[str]:
    single, per_part = _LIMITS[encoding]
    if _units(body, encoding) <= single:
        return [body]
    chunks: list[str] = []
    start, used = 0, 0
    for index, char in enumerate(body):
        size = _unit_size(char, encoding)
        if used + size > per_part:  # the pair goes whole into the next part
            chunks.append(body[start:index])
            start, used = index, 0
        used += size
    chunks.append(body[start:])
    return chunks


def count(body: str) -> SmsCount:
    """The alphabet, number of parts and characters of `body` (see the module docstring)."""
    encoding = encoding_of(body)
    return SmsCount(encoding, len(_chunks(body, encoding)), len(body))


def _encode(text: str, encoding: SmsEncoding) -> bytes:
    if encoding is SmsEncoding.UCS2:
        return text.encode("utf-16-be")
    out = bytearray()
    for char in text:
        if char in _GSM_EXTENSION:
            out += bytes((_ESCAPE, _GSM_EXTENSION[char]))
        else:
            out.append(_BASIC_SEPTET[char])
    return bytes(out)


def split(body: str, reference: int) -> list[SmsSegment]:
    """The parts of `body` as submitted; `reference` (0-255) ties a long message's parts.

    Raises `TooLong` past 255 parts.
    """
    encoding = encoding_of(body)
    chunks = _chunks(body, encoding)
    if len(chunks) == 1:
        return [SmsSegment(encoding, body, _encode(body, encoding), udh=False)]
    if len(chunks) > _MAX_PARTS:
        raise TooLong(f"{len(chunks)} parts; at most {_MAX_PARTS}")
    total = len(chunks)
    return [
        SmsSegment(encoding, chunk,
                   bytes((0x05, 0x00, 0x03, reference & 0xFF, total, number))
                   + _encode(chunk, encoding), udh=True)
        for number, chunk in enumerate(chunks, start=1)
    ]


def decode_gsm7(septets: bytes) -> str:
    """Unpacked GSM-7 (one septet per octet) to text; an unknown escape reads as a space."""
    out: list[str] = []
    escaped = False
    for octet in septets:
        septet = octet & 0x7F
        if escaped:
            out.append(_EXTENSION_CHAR.get(septet, " "))
            escaped = False
        elif septet == _ESCAPE:
            escaped = True
        else:
            out.append(_GSM_BASIC[septet])
    return "".join(out)


def strip_udh(short_message: bytes) -> bytes:
    """The text of a `short_message` whose first octet is the UDH length (UDHI set)."""
    if not short_message:
        return short_message
    return short_message[1 + short_message[0]:]
