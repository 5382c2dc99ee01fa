"""Text from outside (HIS rows, error messages) printed exactly as it is, and harmlessly.

Rich reads `[red]...[/red]` in a plain string as markup: a quarantined value holding `[/]`
crashed `followup his rejects`, and `[red]555[/red]` printed as `555`. Control characters
(escape sequences, bidi overrides) could rewrite what a terminal shows. `verbatim` makes a
`rich.text.Text` that is never parsed as markup, with every control and format character
shown as its `\\u` escape.
"""

from __future__ import annotations

import unicodedata

from rich.text import Text


def _visible(ch: str) -> str:
    if ch in "\t" or unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp"):
        return ch
    return f"\\u{ord(ch):04x}"


def verbatim(value: str | None) -> Text:
    """`value` as literal text for a Rich table or console (empty for None)."""
    if not value:
        return Text("")
    if value.isprintable():
        return Text(value)
    return Text("".join(_visible(ch) for ch in value))
