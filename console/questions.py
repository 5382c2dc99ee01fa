"""Question wording and script titles, the console's seam: the engine passes a
`QuestionCatalog` (it loads the scripts; the console may not import them), so a page names a
question or a script by its text in the reader's language instead of its id."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

_FIRST_QUESTION = re.compile(r"^(.+?[？?])")


@dataclass(frozen=True, slots=True)
class IndexItem:
    """A question a template's satisfaction index averages, and the range mapped onto
    0-100: a scale from its min to its max; a yes/no item from no (0) to yes (1)."""

    script_id: str
    question_id: str
    low: int
    high: int
    yes_no: bool = False

    def score(self, value: str) -> float | None:
        """The stored answer on 0-100; None for a value outside the item's range."""
        if self.yes_no:
            return {"yes": 100.0, "no": 0.0}.get(value)
        text = value.strip()
        if not (text.isascii() and text.lstrip("-").isdigit()):
            return None
        number = int(text)
        if not self.low <= number <= self.high or self.high <= self.low:
            return None
        return 100.0 * (number - self.low) / (self.high - self.low)


class QuestionCatalog(Protocol):
    def wording(self, script_id: str, question_id: str, lang: str) -> str | None:
        """The question's text in `lang` ("zh", "en": a locale's language), from the newest
        script version; None when no script holds it."""
        ...

    def title(self, script_id: str, lang: str) -> str | None:
        """The script's title in `lang`, from its newest version; None when unknown."""
        ...

    def option_label(self, script_id: str, question_id: str, value: str, lang: str
                     ) -> str | None:
        """A choice option's label in `lang` (by its stored value); None when the script
        gives none."""
        ...

    def satisfaction_index(self) -> tuple[IndexItem, ...]:
        """Every template's index items (from each script's newest version)."""
        ...


def short_wording(text: str) -> str:
    """The question itself, without the keypad instructions that follow it ("您满意吗？请按
    1到5打分…" -> "您满意吗？")."""
    found = _FIRST_QUESTION.match(text.strip())
    return found.group(1) if found else text.strip()


def question_name(catalog: QuestionCatalog | None, script_id: str, question_id: str,
                  lang: str) -> str:
    """One question's short wording in `lang`; `script/question` when no script has it."""
    text = catalog.wording(script_id, question_id, lang) if catalog is not None else None
    return short_wording(text) if text else f"{script_id}/{question_id}"


def script_name(catalog: QuestionCatalog | None, script_id: str | None, lang: str) -> str:
    """A script's title in `lang`; its id when no script file has it ("*" for none)."""
    if not script_id:
        return "*"
    title = catalog.title(script_id, lang) if catalog is not None else None
    return title or script_id


def question_names(catalog: QuestionCatalog | None, keys: list[tuple[str, str]], lang: str
                   ) -> dict[str, str]:
    """`script/question` -> its short wording, for the keys the catalog knows."""
    out: dict[str, str] = {}
    if catalog is None:
        return out
    for script_id, question_id in keys:
        text = catalog.wording(script_id, question_id, lang)
        if text:
            out[f"{script_id}/{question_id}"] = short_wording(text)
    return out
