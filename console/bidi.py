"""Bidirectional control characters in what the console shows.

A name from the HIS holding U+202E (right-to-left override) would reverse the text after it
on the page, an MRN beside it included. Every value a template prints passes through
`visible_bidi` (the template environment's `finalize`): the embedding, override and isolate
controls (U+202A-U+202E, U+2066-U+2069) become U+FFFD, so nothing on the page is reordered
and the reader sees that the stored value holds something odd. The store keeps the value as
the HIS sent it.
"""

from __future__ import annotations

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_TABLE = {ord(ch): "\ufffd" for ch in BIDI_CONTROLS}


def visible_bidi(value: object) -> object:
    """`value` with its bidi controls replaced (strings, Markup included); other values as
    they are."""
    if isinstance(value, str) and not BIDI_CONTROLS.isdisjoint(value):
        return value.translate(_TABLE)
    return value
