"""The web as an `ivr.channel.Channel`: the interpreter runs once per request, replaying.

Each request runs the SAME `ScriptInterpreter` from the start over a fresh `WebChannel`,
with the answers already stored for the task as the context's `earlier_answers`, so the
interpreter skips them exactly as it skips what an earlier call answered. The channel
answers the consent question with 1 and the identity check with the birth year the web has
already verified (`patient_web.questionnaire`), hands the interpreter the one answer this
request carries (`WebInput`, in keypad form: yes 1 / no 2, a choice's key, a number's
digits, or typed words for a spoken answer), and when the interpreter asks the next
question it has no answer for, the channel notes the question (`asked`) and hangs up: the
run ends `partial`, and the page shows that question. Why replay rather than one
interpreter coroutine per patient waiting on a queue: the state lives in the store only
(a restart, a second worker or another process loses nothing, and an abandoned form holds
no memory), and a run over a handful of questions costs well under a millisecond.

Words typed for a spoken (`voice`) question reach the interpreter as a clip whose
"recognition" is the text itself (`TypedWords`, a `SpeechRecognizer` that reads what the
channel was given): the interpreter's own voice path stores it, with confidence 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ivr.channel import DigitsResult, InputEnd, PlayResult, Prompt, RecordResult
from ivr.speech import Recognition

# "putting you through": said before a transfer, which the web refuses (then a red flag
# is a ticket, and the safety message follows)
_TRANSFER_NOTICES = frozenset({"msg.nurse_transfer", "msg.operator"})
_TYPED_MS = 1000  # a typed answer's pretend length (the interpreter drops clips under 200 ms)


@dataclass(frozen=True, slots=True)
class WebInput:
    """One answer from the page: for `question_id` of `script_id`, keypad-form `keys`, or
    the `words` typed for a spoken question."""

    script_id: str
    question_id: str
    keys: str = ""
    words: str | None = None


@dataclass(frozen=True, slots=True)
class Shown:
    """Something the interpreter said that the page shows: `part` is the prompt's part
    (`greeting`, `closing`, `msg.safety`, `q.<id>` of a message, `q.<id>.red_flag.<n>`)."""

    part: str
    text: str


@dataclass(frozen=True, slots=True)
class Asked:
    """The question the interpreter is waiting for, as it rendered it."""

    script_id: str
    question_id: str
    text: str


class TypedWords:
    """A `SpeechRecognizer` for the web: the "clip" of a spoken question (a name, never a
    file) stands for the words the patient typed, handed over by the `WebChannel`."""

    def __init__(self) -> None:
        self._typed: dict[str, str] = {}

    def hand_over(self, clip: Path, words: str) -> None:
        self._typed[str(clip)] = words

    def has_model(self, locale: str) -> bool:
        return True

    def grammar_gaps(self, locale: str, words: Sequence[str]) -> list[str]:
        return []

    async def recognize(self, audio: Path, locale: str,
                        grammar: Sequence[str] | None = None,
                        offset_ms: int = 0) -> Recognition:
        text = self._typed.get(str(audio))
        if text is None:
            raise ValueError(f"no typed words for {audio}")
        return Recognition(text=text, confidence=1.0, offset_ms=offset_ms,
                           words=tuple(text.split()) or (text,))


def _part(prompt: Prompt | None) -> tuple[str, str]:
    """(script id, part) of a prompt's key `<script>/<part>`."""
    if prompt is None or "/" not in prompt.key:
        return "", ""
    script_id, part = prompt.key.split("/", 1)
    return script_id, part


class WebChannel:
    """One request's run of the interpreter (see the module doc)."""

    def __init__(self, birth_year: int | None, given: WebInput | None,
                 words: TypedWords) -> None:
        self._birth_year = f"{birth_year:04d}" if birth_year is not None else ""
        self._given = given
        self._words = words
        self._hung_up = False
        self._past_identity = False
        self.consumed = False  # the request's answer was handed to the interpreter
        self.shown: list[Shown] = []  # said after identity and after the answer was taken
        self.asked: Asked | None = None

    @property
    def hung_up(self) -> bool:
        return self._hung_up

    def _takes(self, script_id: str, part: str) -> bool:
        """True (once) when the request's answer is for the question `part` asks."""
        g = self._given
        if g is None or self.consumed or part != f"q.{g.question_id}" \
                or script_id != g.script_id:
            return False
        self.consumed = True
        self.shown.clear()  # the page shows what follows the answer
        return True

    def _wait_for(self, script_id: str, part: str, prompt: Prompt | None) -> None:
        if part.startswith("q.") and prompt is not None:
            self.asked = Asked(script_id, part[2:], prompt.text)
        self._hung_up = True

    async def play(self, prompt: Prompt, interrupt_digits: str = "") -> PlayResult:
        if self._hung_up:
            return PlayResult(None, hung_up=True)
        part = _part(prompt)[1]
        if self._past_identity and part not in _TRANSFER_NOTICES:
            self.shown.append(Shown(part, prompt.text))
        return PlayResult(None)

    async def collect_digits(self, prompt: Prompt | None, max_digits: int, timeout_s: float,
                             terminator: str = "#") -> DigitsResult:
        if self._hung_up:
            return DigitsResult("", InputEnd.HANGUP)
        script_id, part = _part(prompt)
        if part == "consent.prompt":
            return DigitsResult("1", InputEnd.DIGITS)  # opening the link is the consent
        if part.startswith("identity.") and self._birth_year:
            self._past_identity = True  # the web checked the birth year before this run
            return DigitsResult(self._birth_year, InputEnd.DIGITS)
        if self._takes(script_id, part):
            assert self._given is not None
            return DigitsResult(self._given.keys, InputEnd.DIGITS)
        self._wait_for(script_id, part, prompt)
        return DigitsResult("", InputEnd.HANGUP)

    async def record(self, prompt: Prompt | None, max_seconds: float, silence_seconds: float,
                     stop_digits: str = "#") -> RecordResult:
        if self._hung_up:
            return RecordResult(None, 0, 0, InputEnd.HANGUP)
        script_id, part = _part(prompt)
        if self._takes(script_id, part):
            assert self._given is not None
            if self._given.words is not None:
                clip = Path("web", script_id, part)
                self._words.hand_over(clip, self._given.words)
                return RecordResult(clip, _TYPED_MS, 0, InputEnd.DIGITS)
            return RecordResult(None, 0, 0, InputEnd.DIGITS, digit=self._given.keys)
        self._wait_for(script_id, part, prompt)
        return RecordResult(None, 0, 0, InputEnd.HANGUP)

    async def transfer(self, target: str, variables: dict[str, str]) -> bool:
        return False  # nobody to put a web page through to: the red flag becomes a ticket

    async def wait_for_silence(self, silence_s: float, timeout_s: float) -> bool:
        return True

    async def hangup(self) -> None:
        self._hung_up = True
