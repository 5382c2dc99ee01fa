"""What a run of a script produces: answers (saved as they are given), red flags, ticket
requests, the outcome, and where a later call resumes.

`AnswerSink` is the seam to storage: the interpreter awaits `save(answer)` the moment an
answer is final, so a hangup at question 4 keeps answers 1-3. `InMemoryAnswerSink` ships
for tests and the simulator; the dialer provides one that writes the `answers` table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from core.enums import AnswerSource, QuestionKind, ScriptOutcome, Severity, TicketReason, YesNo

YES = YesNo.YES.value
NO = YesNo.NO.value


@dataclass(frozen=True, slots=True)
class Answer:
    """One answered (or given-up) question, in storage form (`value` is text)."""

    script_id: str
    script_version: int
    question_id: str
    kind: QuestionKind
    source: AnswerSource
    value: str | None  # yes/no, option value, integer as text; None when unanswered
    transcript: str | None = None
    confidence: float | None = None
    needs_review: bool = False
    note: str | None = None
    red_flag: Severity | None = None
    audio: Path | None = None  # the voice clip, kept even when not transcribed
    # where the answer sits in the call recording: a clip's start, or when the keys ended
    offset_ms: int | None = None

    @property
    def answered(self) -> bool:
        """True when the patient gave an answer (a resumed call will not ask again)."""
        if self.kind is QuestionKind.VOICE:
            if self.source is AnswerSource.WEB:  # typed into the web questionnaire
                return self.transcript is not None
            return self.source is AnswerSource.VOICE and self.audio is not None
        return self.value is not None

    def typed_value(self) -> Any:
        """The value conditions see: bool for yes_no, int for scale/number, else text."""
        if self.kind is QuestionKind.VOICE:
            return self.transcript
        if self.value is None:
            return None
        if self.kind is QuestionKind.YES_NO:
            return self.value == YES
        if self.kind in (QuestionKind.SCALE, QuestionKind.NUMBER):
            return int(self.value)
        return self.value


@dataclass(frozen=True, slots=True)
class RedFlagHit:
    question_id: str
    severity: Severity
    summary: str
    condition: str
    transferred: bool


@dataclass(frozen=True, slots=True)
class TicketRequest:
    """A ticket the dialer must raise for a person to follow up."""

    reason: TicketReason
    severity: Severity | None
    summary: str  # one line
    script_id: str = ""
    question_id: str | None = None


@dataclass
class ScriptResult:
    """How one script went on one call."""

    script_id: str
    script_version: int
    locale: str
    outcome: ScriptOutcome = ScriptOutcome.PARTIAL
    answers: list[Answer] = field(default_factory=list)
    red_flags: list[RedFlagHit] = field(default_factory=list)
    tickets: list[TicketRequest] = field(default_factory=list)
    opted_out: bool = False
    identity_verified: bool = False
    transferred_to: str | None = None
    resume_from: str | None = None  # first question a later call asks; None when complete


class AnswerSink(Protocol):
    """Where answers go, one at a time, as soon as they are final.

    A voice answer is saved twice: first with its clip and no transcript (so it is kept
    before the call moves on), then with its transcript, which completes that answer."""

    async def save(self, answer: Answer) -> None:
        """Persist `answer` (a second save of the same question completes its transcript).
        May raise StoreError; the interpreter does not swallow it."""
        ...


class InMemoryAnswerSink:
    """Keeps answers in a list (tests, simulations); one per question, the latest."""

    def __init__(self) -> None:
        self.answers: list[Answer] = []

    async def save(self, answer: Answer) -> None:
        for i, kept in enumerate(self.answers):
            if (kept.script_id, kept.question_id) == (answer.script_id, answer.question_id):
                self.answers[i] = answer
                return
        self.answers.append(answer)
