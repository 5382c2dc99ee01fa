"""Turning what the caller did (keys, a clip) into an answer or a `Signal`.

No channel I/O here: the interpreter reads the channel and asks this module what it
means. Keypad: yes/no are 1/2; choices are their keys; scales and numbers are the typed
integer within [min, max]. Speech: a closed question's clip is decoded with a grammar of
its words (`vocabulary`) and accepted only when every word maps to the same answer and the
confidence reaches `min_confidence`; otherwise `Signal.NOT_UNDERSTOOD` (re-ask on the
keypad). A free answer is always stored: transcript and confidence, `needs_review` when
doubtful, or the clip alone with "not transcribed: no model for <locale>".
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

from core.enums import AnswerSource, QuestionKind
from ivr.messages import YES_NO_WORDS
from ivr.results import NO, YES, Answer
from ivr.script_model import Question, Script
from ivr.speech import NoModel, SpeechRecognizer, map_words

TRANSCRIBING = "transcript pending"  # a voice answer saved before its transcript

class Signal(enum.StrEnum):
    """Input that is not an answer."""

    TIMEOUT = "timeout"
    INVALID = "invalid"
    REPEAT = "repeat"  # *
    OPERATOR = "operator"  # 0
    OPT_OUT = "opt_out"  # 9
    NOT_UNDERSTOOD = "not_understood"  # speech that maps to no single answer


def new_answer(script: Script, q: Question, source: AnswerSource, value: str | None,
               **extra: Any) -> Answer:
    return Answer(script.id, script.version, q.id, q.kind, source, value, **extra)


def key_value(q: Question, keys: str) -> str | None:
    """The stored value keypad input `keys` means for `q`, or None if invalid."""
    if q.kind is QuestionKind.YES_NO:
        return {"1": YES, "2": NO}.get(keys)
    if q.kind is QuestionKind.CHOICE:
        return next((o.value for o in q.options if o.key == keys), None)
    if q.kind in (QuestionKind.SCALE, QuestionKind.NUMBER):
        if not keys.isdigit() or q.min is None or q.max is None:
            return None
        number = int(keys)
        return str(number) if q.min <= number <= q.max else None
    return None


def read_keys(script: Script, q: Question, keys: str) -> Answer | Signal:
    """Keypad input -> answer, or the signal it is (global keys on single-key questions)."""
    if keys == "":
        return Signal.TIMEOUT
    if "*" in keys:
        return Signal.REPEAT
    if q.single_key:
        if keys == "0" and "0" not in q.answer_keys():
            return Signal.OPERATOR
        if keys == "9" and "9" not in q.answer_keys():
            return Signal.OPT_OUT
    value = key_value(q, keys)
    if value is None:
        return Signal.INVALID
    return new_answer(script, q, AnswerSource.KEYPAD, value)


def vocabulary(locale: str, q: Question) -> dict[str, str]:
    """Spoken word -> stored value, for a closed question (empty: keypad only)."""
    if q.kind is QuestionKind.YES_NO:
        words = YES_NO_WORDS.get(locale, {})
        return {**{w: YES for w in words.get(True, ())},
                **{w: NO for w in words.get(False, ())}}
    if q.kind is QuestionKind.CHOICE:
        return {w: o.value for o in q.options for w in o.words}
    return {}


class VoiceReader:
    """Speech answers through a `SpeechRecognizer` (which decodes off the event loop)."""

    def __init__(self, recognizer: SpeechRecognizer | None, min_confidence: float) -> None:
        self.recognizer = recognizer
        self.min_confidence = min_confidence

    def accepts_speech(self, script: Script, q: Question) -> bool:
        return (q.voice and self.recognizer is not None
                and self.recognizer.has_model(script.locale)
                and bool(vocabulary(script.locale, q)))

    async def closed(self, script: Script, q: Question, audio: Path,
                     offset_ms: int) -> Answer | Signal:
        """A clip for a closed question -> the answer, or NOT_UNDERSTOOD."""
        if self.recognizer is None:
            return Signal.NOT_UNDERSTOOD
        words = vocabulary(script.locale, q)
        try:
            heard = await self.recognizer.recognize(audio, script.locale, list(words),
                                                    offset_ms)
        except NoModel:
            return Signal.NOT_UNDERSTOOD
        value = map_words(heard, words)
        if value is None or heard.confidence < self.min_confidence:
            return Signal.NOT_UNDERSTOOD
        return new_answer(script, q, AnswerSource.VOICE, value, transcript=heard.text,
                          confidence=heard.confidence, audio=audio, offset_ms=offset_ms)

    def can_transcribe(self, script: Script) -> bool:
        return self.recognizer is not None and self.recognizer.has_model(script.locale)

    def before_transcript(self, script: Script, q: Question, audio: Path,
                          offset_ms: int) -> Answer:
        """A free answer's clip as it is stored before its transcript exists (or for good,
        when there is no model for the locale): the clip, flagged for review."""
        note = (TRANSCRIBING if self.can_transcribe(script)
                else f"not transcribed: no model for {script.locale}")
        return new_answer(script, q, AnswerSource.VOICE, None, audio=audio,
                          offset_ms=offset_ms, needs_review=True, note=note)

    async def free(self, script: Script, q: Question, audio: Path, offset_ms: int) -> Answer:
        """A free answer's clip -> an answer that always keeps the clip."""
        untranscribed = new_answer(
            script, q, AnswerSource.VOICE, None, audio=audio, offset_ms=offset_ms,
            needs_review=True, note=f"not transcribed: no model for {script.locale}")
        if self.recognizer is None or not self.recognizer.has_model(script.locale):
            return untranscribed
        try:
            heard = await self.recognizer.recognize(audio, script.locale, None, offset_ms)
        except NoModel:
            return untranscribed
        doubtful = heard.empty or heard.confidence < self.min_confidence
        return new_answer(
            script, q, AnswerSource.VOICE, None, transcript=heard.text,
            confidence=heard.confidence, audio=audio, offset_ms=offset_ms,
            needs_review=doubtful, note="low confidence: needs review" if doubtful else None)
