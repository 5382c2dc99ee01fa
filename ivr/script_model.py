"""The in-memory model of one question script (one script id, version and locale).

Built only by `ivr.script_loader`, which validates the YAML and compiles every template and
condition at load, so nothing here can fail at call time for a reason the file could have
shown. Everything is frozen.

Prompt templates (`Template`) are Jinja2 templates rendered in a sandbox by
`ivr.prompts.PromptRenderer`. Conditions (`Condition`, used by `when:` and `red_flag:`) are
Jinja2 *expressions* over earlier answers: each earlier question id is a variable holding
its typed answer (`yes_no` -> true/false, `choice` -> the option value, `scale` and
`number` -> int, `voice` -> the transcript), or none when it was not answered; inside
`red_flag:` the name `value` is the question's own answer. A condition that cannot be
evaluated (comparing none with a number) is false.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from jinja2 import Template as JinjaTemplate
from jinja2.environment import TemplateExpression

from core.enums import QuestionKind, Severity
from ivr.red_flag_action import RedFlagAction

# Variables a prompt may use before identity is verified: what anyone who picks up, or an
# answering machine, may hear. The patient's name and department are private (a department
# says what someone was treated for), and so is every question.
OPEN_VARIABLES = frozenset({"hospital", "emergency_number", "callback_number"})
# Added once the callee has pressed a key and passed the identity check.
VERIFIED_VARIABLES = OPEN_VARIABLES | {"patient", "department", "visit"}
# The prompt keys that may play before identity is verified (`Script.templates` keys):
# standard messages, the consent question and the identity check, all on OPEN_VARIABLES.
OPEN_PARTS = ("msg.", "consent.", "identity.")


def plays_before_identity(key: str) -> bool:
    """True when the prompt `key` (`<part>`, e.g. `consent.prompt`) may play to a callee
    who has not yet passed the identity check."""
    return key.startswith(OPEN_PARTS)


@dataclass(frozen=True, slots=True)
class Template:
    """A compiled prompt template and the context variables it uses."""

    source: str
    compiled: JinjaTemplate = field(compare=False, repr=False)
    variables: frozenset[str] = frozenset()
    line: int | None = None

    @property
    def is_static(self) -> bool:
        """True when the text depends on nothing but the hospital's own facts (its name and
        numbers: pre-renderable)."""
        return self.variables <= OPEN_VARIABLES


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled condition over earlier answers."""

    source: str
    compiled: TemplateExpression = field(compare=False, repr=False)
    names: frozenset[str] = frozenset()
    line: int | None = None

    def holds(self, values: dict[str, Any]) -> bool:
        """Evaluate over `values` (question id -> typed answer or None); errors are false."""
        try:
            return bool(self.compiled(**values))
        except (TypeError, ValueError, ArithmeticError, LookupError):
            return False


@dataclass(frozen=True, slots=True)
class Option:
    """One answer of a `choice` question: the key that picks it, its stored value, the
    words that say it (for the speech grammar) and its label in the script's language (how
    reports and the console name it; the value when none is given)."""

    key: str
    value: str
    words: tuple[str, ...] = ()
    label: str = ""


@dataclass(frozen=True, slots=True)
class RedFlag:
    """An answer that needs a clinician: when `condition` holds after the question."""

    condition: Condition
    severity: Severity
    action: RedFlagAction
    summary: str
    message: Template | None = None  # the safety message; the locale default otherwise


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    kind: QuestionKind
    text: Template
    line: int | None = None
    when: Condition | None = None
    options: tuple[Option, ...] = ()  # choice
    min: int | None = None  # scale, number
    max: int | None = None
    max_digits: int = 1  # keys collected for one answer
    voice: bool = False  # closed question also accepts a spoken answer
    max_seconds: float = 30.0  # voice answers
    red_flags: tuple[RedFlag, ...] = ()

    @property
    def single_key(self) -> bool:
        """Answered by one key press (global keys * 0 9 are live on these)."""
        return self.max_digits == 1 and self.kind is not QuestionKind.NUMBER

    def answer_keys(self) -> frozenset[str]:
        """The keys that are answers (on a single-key question)."""
        if self.kind is QuestionKind.YES_NO:
            return frozenset({"1", "2"})
        if self.kind is QuestionKind.CHOICE:
            return frozenset(o.key for o in self.options)
        if self.kind is QuestionKind.SCALE and self.min is not None and self.max is not None:
            return frozenset(str(v) for v in range(self.min, self.max + 1) if v <= 9)
        return frozenset()


@dataclass(frozen=True, slots=True)
class IdentityCheck:
    """The birth-year check that must pass before the name, department or any question."""

    prompt: Template
    retry: Template
    failed: Template
    tries: int = 2


@dataclass(frozen=True, slots=True)
class Consent:
    """'Is now a good time?' 1 yes / 2 no, the first thing asked after the opening: the key
    press a machine cannot make. No means refused."""

    prompt: Template
    declined: Template


class MachineAction(StrEnum):
    """What a call of this script does when an answering machine picks up."""

    HANG_UP = "hang_up"  # say nothing (the default)
    # after the greeting's beep, the locale's `voicemail` message (the hospital and the
    # call-back number only), when the patient agreed to messages; else hang up
    LEAVE_MESSAGE = "leave_message"


@dataclass(frozen=True, slots=True)
class Script:
    """One script file, validated and compiled."""

    id: str
    version: int
    locale: str
    title: str
    path: str
    greeting: Template
    closing: Template
    questions: tuple[Question, ...]
    identity: IdentityCheck
    consent: Consent
    messages: dict[str, Template] = field(default_factory=dict, compare=False)
    retries: int = 2  # re-prompts after a timeout or an invalid key
    timeout_s: float = 6.0
    # the questions a satisfaction template's index averages (each normalised to 0-100)
    satisfaction_index: tuple[str, ...] = ()
    on_machine: MachineAction = MachineAction.HANG_UP

    def question(self, question_id: str) -> Question:
        for q in self.questions:
            if q.id == question_id:
                return q
        raise KeyError(question_id)

    def message(self, key: str) -> Template:
        """A standard message (`invalid`, `timeout`, ...): the script's or the locale's."""
        return self.messages[key]

    def templates(self) -> list[tuple[str, Template]]:
        """Every template with its prompt key (`<script>/<part>`), for pre-rendering."""
        out: list[tuple[str, Template]] = [("greeting", self.greeting),
                                           ("closing", self.closing)]
        out += [("identity.prompt", self.identity.prompt),
                ("identity.retry", self.identity.retry),
                ("identity.failed", self.identity.failed),
                ("consent.prompt", self.consent.prompt),
                ("consent.declined", self.consent.declined)]
        for q in self.questions:
            out.append((f"q.{q.id}", q.text))
            for i, flag in enumerate(q.red_flags):
                if flag.message is not None:
                    out.append((f"q.{q.id}.red_flag.{i}", flag.message))
        out += [(f"msg.{k}", t) for k, t in sorted(self.messages.items())]
        return out
