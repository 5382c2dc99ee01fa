"""Prompt text: Jinja2 templates rendered in a sandbox over sanitised call data.

Templates come from script files (trusted authors); the values come from the HIS (not
trusted: a patient's name may hold quotes, newlines, `{{ 7*7 }}` or AGI keywords). So:

- templates are compiled once at load in a `SandboxedEnvironment` (no attribute tricks);
- autoescape is off (this is speech, not HTML) but every context value goes through
  `speakable()`, which makes it plain one-line text: control characters and newlines become
  spaces, characters that mean something to Jinja, shells or the AGI protocol (`{ } " \\ ``
  $ ;`) are dropped, whitespace is collapsed and the length capped. Template syntax inside
  data is never evaluated: Jinja does not re-parse output, and the braces are gone anyway;
- the rendered text is collapsed to one line as well (`PromptRenderer.render`).

Nothing private before identity is verified: `PromptContext.variables(verified=False)` holds
only the hospital and the emergency number, not the patient's name, the department or the
visit; the loader also rejects a consent, identity or message template that names them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import ChainableUndefined
from jinja2.sandbox import SandboxedEnvironment

from ivr.script_model import Template

MAX_VALUE_CHARS = 80
_DROP = str.maketrans("", "", '{}"\\`$;<>|')
_SPACES = re.compile(r"\s+")


def speakable(value: object, max_chars: int = MAX_VALUE_CHARS) -> str:
    """`value` as plain, one-line, speakable text (see the module docstring)."""
    text = "" if value is None else str(value)
    text = "".join(" " if unicodedata.category(ch)[0] in "CZ" and ch != " " else ch
                   for ch in text)
    text = text.translate(_DROP)
    text = _SPACES.sub(" ", text).strip()
    return text[:max_chars].rstrip()


def new_environment() -> SandboxedEnvironment:
    """The one kind of Jinja2 environment prompts and conditions are compiled in."""
    # ChainableUndefined: a missing fact (`visit.procedure` before verification, or a
    # visit without that key) says nothing rather than failing the call.
    return SandboxedEnvironment(autoescape=False, keep_trailing_newline=False,
                                finalize=_finalize, undefined=ChainableUndefined)


def _finalize(value: Any) -> Any:
    # Every {{ ... }} output passes here: numbers stay numbers, everything else is cleaned.
    if isinstance(value, bool | int | float):
        return value
    return speakable(value, MAX_VALUE_CHARS * 4)


@dataclass(frozen=True, slots=True)
class PatientView:
    name: str
    title: str = ""


@dataclass(frozen=True, slots=True)
class PromptContext:
    """What prompts may mention. The patient, the department and the visit are private:
    only given once identity is verified."""

    patient_name: str = ""
    patient_title: str = ""
    hospital: str = ""
    department: str = ""
    emergency_number: str = "120"
    callback_number: str = ""
    visit: Mapping[str, str] = field(default_factory=dict)

    def variables(self, verified: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "hospital": speakable(self.hospital),
            "emergency_number": speakable(self.emergency_number, 16),
            "callback_number": speakable(self.callback_number, 28),
        }
        if verified:
            out["patient"] = PatientView(speakable(self.patient_name, 40),
                                         speakable(self.patient_title, 20))
            out["department"] = speakable(self.department)
            out["visit"] = {speakable(k, 40): speakable(v) for k, v in self.visit.items()}
        return out


class PromptRenderer:
    """Renders compiled templates to one line of speakable text."""

    def render(self, template: Template, context: PromptContext, verified: bool) -> str:
        text = template.compiled.render(context.variables(verified))
        return _SPACES.sub(" ", text).strip()

    def render_static(self, template: Template, hospital: str,
                      emergency_number: str = "120", callback_number: str = "") -> str:
        """Render a template that needs only the hospital's name and numbers
        (`Template.is_static`)."""
        return self.render(template, PromptContext(hospital=hospital,
                                                   emergency_number=emergency_number,
                                                   callback_number=callback_number),
                           verified=False)
