"""From the interpreter's words to a phone's page, and from the page's form back to an
answer.

Question texts are written to be heard ("是请按1，否请按2", "Press 1 for yes"): on a page the
answer is a button or a field, so the keypad instructions are taken out (`web_wording`) and
the inputs carry the choices: yes/no and choices as buttons with their labels, scales and
numbers as numeric fields with their range, a spoken answer as a text box. `read_answer`
checks the POSTed form at the boundary (an out-of-range number is refused at its field,
before the interpreter runs) and turns it into the keypad form the interpreter reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from core.enums import QuestionKind
from ivr.script_model import Question, Script
from patient_web.texts import text
from patient_web.web_channel import Shown, WebInput

MAX_WORDS = 500  # characters typed for a spoken question

# A clause (between Chinese punctuation) that tells a caller which key to press.
_ZH_CLAUSE = re.compile(r"[^，。？！；]*[，。？！；]?")
_ZH_KEYS = re.compile(r"请?按\s*[0-9一二三四五六七八九十井#*]|按井号|请按键|按键")
# the greeting calls itself a phone call; on a page it is a questionnaire
_ZH_PHRASES = (("请在提示音后说出", "请写下"), ("请在提示音后", "请"), ("在提示音后", ""),
               ("的随访电话", "的随访问卷"))
_EN_PHRASES = ((", then press the hash key", ""), (" then press the hash key", ""),
               ("after the tone, ", ""), ("After the tone, ", ""),
               ("a follow-up call from", "a follow-up questionnaire from"))
_EN_SENTENCE = re.compile(r"[^.?!]*[.?!]?\s*")
_EN_KEYS = re.compile(r"\bpress\b", re.IGNORECASE)
_KO_PHRASES = (("신호음 후에 ", ""), ("말씀해 주시고 우물 정자를 눌러 주세요", "적어 주세요"),
               ("누르고 우물 정자를 눌러 주세요", "입력해 주세요"),
               ("0점부터 10점까지 눌러 주세요", "0점부터 10점까지 매겨 주세요"),
               ("추적 관찰 전화입니다", "추적 관찰 설문입니다"))
_KO_SENTENCE = re.compile(r"[^.?!]*[.?!]?\s*")
_KO_KEYS = re.compile(r"눌러|누르|누른")


def _zh(source: str) -> str:
    for old, new in _ZH_PHRASES:
        source = source.replace(old, new)
    kept: list[str] = []
    for clause in _ZH_CLAUSE.findall(source):
        if not clause:
            continue
        if _ZH_KEYS.search(clause):
            # the sentence ends with the dropped clause: end the kept one there
            if clause[-1] in "。！" and kept and kept[-1][-1:] in "，；":
                kept[-1] = kept[-1][:-1] + clause[-1]
            continue
        kept.append(clause)
    return "".join(kept).strip()


def _sentences(source: str, pattern: re.Pattern[str], keys: re.Pattern[str]) -> str:
    kept = [s for s in pattern.findall(source) if s.strip() and not keys.search(s)]
    return "".join(kept).strip()


def web_wording(source: str, locale: str) -> str:
    """`source` (a prompt as heard) without its keypad instructions; the text itself when
    taking them out would leave nothing."""
    if locale.startswith("zh"):
        out = _zh(source)
    elif locale.startswith("ko"):
        for old, new in _KO_PHRASES:
            source = source.replace(old, new)
        out = _sentences(source, _KO_SENTENCE, _KO_KEYS)
    else:
        for old, new in _EN_PHRASES:
            source = source.replace(old, new)
        out = _sentences(source, _EN_SENTENCE, _EN_KEYS)
    return out or source.strip()


@dataclass(frozen=True)
class Choice:
    key: str  # the keypad key the interpreter reads
    label: str


@dataclass(frozen=True)
class QuestionForm:
    """One question as the page asks it."""

    script_id: str
    question_id: str
    text: str
    kind: QuestionKind
    choices: tuple[Choice, ...] = ()
    min: int | None = None
    max: int | None = None
    max_chars: int = MAX_WORDS

    @property
    def buttons(self) -> bool:
        return bool(self.choices)

    @property
    def numeric(self) -> bool:
        return self.kind in (QuestionKind.SCALE, QuestionKind.NUMBER)


def question_form(script: Script, q: Question, asked_text: str, language: str) -> QuestionForm:
    """The page's form for `q` (its text as the interpreter rendered it)."""
    wording = web_wording(asked_text, script.locale)
    choices: tuple[Choice, ...]
    if q.kind is QuestionKind.YES_NO:
        choices = (Choice("1", text(language, "yes")), Choice("2", text(language, "no")))
    elif q.kind is QuestionKind.CHOICE:
        choices = tuple(Choice(o.key, o.label or o.value) for o in q.options)
    else:
        choices = ()
    return QuestionForm(script.id, q.id, wording, q.kind, choices, q.min, q.max)


@dataclass(frozen=True)
class Problem:
    """Why a form's answer was refused: a `patient_web.texts` key and its values."""

    key: str
    values: Mapping[str, object] = field(default_factory=dict)


def read_answer(script: Script, q: Question, form: Mapping[str, str]) -> WebInput | Problem:
    """The POSTed answer to `q` as the interpreter reads it, or the problem to show."""
    raw = (form.get("answer") or "").strip()
    if q.kind is QuestionKind.VOICE:
        if not raw:
            return Problem("write_something")
        if len(raw) > MAX_WORDS:
            return Problem("too_long", {"max": MAX_WORDS})
        return WebInput(script.id, q.id, words=" ".join(raw.split()))
    if q.kind in (QuestionKind.SCALE, QuestionKind.NUMBER):
        lo, hi = q.min if q.min is not None else 0, q.max if q.max is not None else 0
        if not re.fullmatch(r"[0-9]{1,6}", raw) or not lo <= int(raw) <= hi:
            return Problem("out_of_range", {"min": lo, "max": hi})
        return WebInput(script.id, q.id, keys=str(int(raw)))
    allowed = {"1", "2"} if q.kind is QuestionKind.YES_NO else {o.key for o in q.options}
    if raw not in allowed:
        return Problem("pick_one")
    return WebInput(script.id, q.id, keys=raw)


@dataclass(frozen=True)
class Said:
    """Something shown above the question; `safety` marks a red flag's safety message."""

    text: str
    safety: bool = False


def said(shown: tuple[Shown, ...], locale: str) -> tuple[Said, ...]:
    """What the interpreter said since the last answer, as the page shows it (the closing is
    the finished page's own)."""
    out: list[Said] = []
    for item in shown:
        safety = item.part == "msg.safety" or ".red_flag." in item.part
        out.append(Said(web_wording(item.text, locale), safety))
    return tuple(out)
