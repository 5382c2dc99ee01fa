"""Phone numbers to E.164: a cheap fast path for the common Chinese shapes, `phonenumbers`
as the authority for everything else.

Parsing with `phonenumbers` costs ~15 microseconds a number, too slow for a million-row sync.
Most HIS numbers are one of a handful of shapes (an 11-digit mobile, the same with +86, 0086
or 86 in front, a landline with its 0-prefixed area code, with spaces, dashes or brackets).
`fast_e164` recognises those shapes and validates the national number against the patterns
*taken from phonenumbers' own CN metadata*, so it can only accept what the library accepts
(a hypothesis property test holds it to that). Whatever it does not recognise, including
every invalid number, goes to the library: the library alone decides what is invalid.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneMetadata

_CN = PhoneMetadata.metadata_for_region("CN")
assert _CN is not None and _CN.general_desc is not None
_GENERAL = re.compile(_CN.general_desc.national_number_pattern or "(?!)")
_MOBILE = re.compile(_CN.mobile.national_number_pattern or "(?!)") if _CN.mobile else None
_FIXED = re.compile(_CN.fixed_line.national_number_pattern or "(?!)") if _CN.fixed_line else None
# A national number the library might read as "carrier-select code + number": leave to it.
_CARRIER = re.compile(_CN.national_prefix_for_parsing or "(?!)")

_SEPARATORS = str.maketrans("", "", " -().\u3000（）\t")


def _national_ok(national: str) -> bool:
    if not (national.isdigit() and national.isascii()) or national[0] == "0":
        return False
    if len(national) == 11 and national[0] == "1":
        # Every 11-digit 1x number matches the general pattern (its `1\d{10}` branch).
        return _MOBILE is not None and _MOBILE.fullmatch(national) is not None
    if _CARRIER.match(national) is not None or _GENERAL.fullmatch(national) is None:
        return False
    return _FIXED is not None and _FIXED.fullmatch(national) is not None


def fast_e164(raw: str, region: str = "CN") -> str | None:
    """E.164 for a common Chinese shape, or None for "ask the library" (never "invalid")."""
    s = raw if raw.isdigit() else raw.strip().translate(_SEPARATORS)
    if len(s) == 11 and s[0] == "1" and region == "CN":
        national = s
    elif s.startswith("+86"):
        national = s[3:]
    elif s.startswith("0086"):
        national = s[4:]
    elif len(s) == 13 and s.startswith("861"):
        national = s[2:]
    elif region != "CN" or s.startswith("00"):
        return None
    elif s.startswith("0"):
        national = s[1:]
    elif len(s) == 11 and s.startswith("1"):
        national = s
    else:
        return None
    return "+86" + national if _national_ok(national) else None


def library_e164(raw: str, region: str) -> str | None:
    """The authority: phonenumbers parse + validate + format, None when invalid."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


@lru_cache(maxsize=4096)
def _cached_library(raw: str, region: str) -> str | None:
    return library_e164(raw, region)


def to_e164(raw: str, region: str = "CN") -> str | None:
    """Normalise one phone number to E.164, or None when it is not a valid number."""
    fast = fast_e164(raw, region)
    if fast is not None:
        return fast
    return _cached_library(raw, region)
