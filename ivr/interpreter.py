"""The IVR interpreter: runs question scripts over any `ivr.channel.Channel`.

`ScriptInterpreter(prompts, sink, recognizer).run(script, channel, context)` (or the
function `run_script`) runs one script; `run_many` runs several merged same-day scripts in
one call, with one opening, one consent, one identity check, one greeting and one closing
(the last script's).

Order: opening (the hospital's name only) -> consent ("is now a good time?", 1 yes, 2 =
refused) -> identity check (birth year, `tries` attempts) -> greeting (the patient's name and
department) -> questions -> closing. Nobody hears the patient's name, department or any
question before they have pressed a key and passed the identity check: an answering machine,
or whoever else picks up, hears the hospital's name and the consent question only. Until
identity is verified, prompts render over the open context and only the parts
`ivr.script_model.plays_before_identity` allows are played (`CallIO` refuses the others).

Per question:
- `when:` is evaluated over earlier answers (including a resumed call's earlier answers);
  false -> skipped, nothing stored. Questions answered on an earlier call are skipped.
- Single-key questions (yes/no, choice, 1-5 scale): `*` repeats, `0` asks for a person
  (transfer to the agent queue; if refused: a ticket and we carry on), `9` opts out after
  a confirmation (1 confirms). Multi-digit input (numbers, 0-10 scales, birth year) ends
  with `#` or the digit limit; there only `*` is special (0 and 9 are digits).
- A timeout or an invalid answer re-prompts up to `retries` times; then the answer is
  stored as unanswered (source `none`) and the script goes on. `*` does not use up a try
  (at most 5 repeats per question).
- Closed questions with `voice: true` in a locale with a speech model are recorded, so the
  patient may speak or press a key. A result whose words do not map to one answer, or
  whose confidence is under `min_confidence`, is not stored: the question is asked again
  for the keypad only. A `voice` question is recorded and transcribed; low confidence ->
  `needs_review`; no model for the locale -> the clip is kept with the note
  "not transcribed: no model for <locale>". A free transcription is slow (about real
  time with the small Korean model), so when no red flag or later condition reads the
  answer it runs in the background while the call goes on; `run_many` still waits for it
  (and its save) before returning, on every path.
- Each answer is saved to the `AnswerSink` as soon as it is final, carrying its red flag.
- Red flags (only on an answer that was given), the 0 and 9 keys: see `ivr.escalation`
  (transfer in staffed hours, else a ticket plus the safety message; the script goes on
  and ends `escalated` instead of `completed`).

Outcomes: completed, escalated, partial (hangup; `resume_from` is the question a later call
starts at), refused (consent declined), identity_failed (with a ticket), opted_out,
transferred. A hangup is never an exception out of here; a failing `AnswerSink` or TTS is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from core.enums import AnswerSource, QuestionKind, ScriptOutcome, Severity, TicketReason
from core.ticket_texts import TicketText, ticket_text
from ivr.answer_reading import Signal, VoiceReader, new_answer, read_keys
from ivr.call_context import CallContext
from ivr.call_state import (
    CallEnded,
    CallIO,
    CallState,
    HungUp,
    condition_values,
    first_unanswered,
    script_answers,
)
from ivr.channel import Channel, Prompt
from ivr.escalation import Escalation
from ivr.prompt_maker import PromptSource
from ivr.results import (
    Answer,
    AnswerSink,
    ScriptResult,
    TicketRequest,
)
from ivr.script_model import Question, Script
from ivr.speech import SpeechRecognizer

MAX_REPEATS = 5
CLOSED_VOICE_SECONDS = 6.0
CLOSED_VOICE_SILENCE = 1.5
OPEN_VOICE_SILENCE = 3.0
MIN_CLIP_MS = 200


@dataclass(frozen=True, slots=True)
class _Clip:
    """A free answer's recording, not transcribed yet."""

    audio: Path
    offset_ms: int


class ScriptInterpreter:
    """Runs scripts over a Channel. Built once by the composition root."""

    def __init__(self, prompts: PromptSource, sink: AnswerSink,
                 recognizer: SpeechRecognizer | None = None,
                 min_confidence: float = 0.6) -> None:
        self.prompts = prompts
        self.sink = sink
        self.voice = VoiceReader(recognizer, min_confidence)
        self.io = CallIO(prompts)
        self.escalation = Escalation(self.io)

    async def run(self, script: Script, channel: Channel, context: CallContext) -> ScriptResult:
        """Run one script; returns its result (never raises on hangup)."""
        return (await self.run_many([script], channel, context))[0]

    async def run_many(self, scripts: Sequence[Script], channel: Channel,
                       context: CallContext) -> list[ScriptResult]:
        """Run merged scripts in one call: one greeting, one identity check, one closing."""
        if not scripts:
            raise ValueError("run_many needs at least one script")
        run = CallState(channel, context,
                   [ScriptResult(s.id, s.version, s.locale) for s in scripts])
        for s in scripts:
            run.values[s.id], run.answered[s.id] = script_answers(s, context.earlier_answers)
        try:
            return await self._run(run, scripts)
        finally:
            if run.pending:  # free answers still being transcribed: never lost
                await asyncio.gather(*run.pending)

    async def _run(self, run: CallState, scripts: Sequence[Script]) -> list[ScriptResult]:
        channel = run.channel
        first = scripts[0]
        ended: ScriptOutcome | None = None
        try:
            await self.io.message(run, first, "opening")
            await self._consent(run, first)
            await self._identity(run, first)  # one check for the whole call
            await self.io.play(run, first, "greeting", first.greeting)
            for index, script in enumerate(scripts):
                run.current = index
                await self._questions(run, script)
                run.result.outcome = (ScriptOutcome.ESCALATED if script.id in run.escalated
                                      else ScriptOutcome.COMPLETED)
                run.result.resume_from = None
                run.finished.add(index)
            await self.io.play(run, scripts[-1], "closing", scripts[-1].closing)
            await channel.hangup()
        except HungUp:
            ended = ScriptOutcome.PARTIAL
        except CallEnded as stop:
            ended = stop.outcome
        if ended is not None:
            self._finish(run, scripts, ended)
        return run.results

    def _finish(self, run: CallState, scripts: Sequence[Script], ended: ScriptOutcome) -> None:
        whole_call = ended in (ScriptOutcome.REFUSED, ScriptOutcome.OPTED_OUT,
                               ScriptOutcome.IDENTITY_FAILED)
        for index, (script, result) in enumerate(zip(scripts, run.results, strict=True)):
            if index in run.finished:
                continue  # its questions all ran before the call ended
            if whole_call or index == run.current:
                result.outcome = ended
            else:
                result.outcome = ScriptOutcome.PARTIAL
            result.opted_out = ended is ScriptOutcome.OPTED_OUT
            if result.outcome in (ScriptOutcome.PARTIAL, ScriptOutcome.TRANSFERRED,
                                  ScriptOutcome.REFUSED):
                result.resume_from = self._first_unanswered(run, script)
            else:
                result.resume_from = None

    @staticmethod
    def _first_unanswered(run: CallState, script: Script) -> str | None:
        return first_unanswered(script, run.values[script.id], run.answered[script.id])

    # -- identity and consent ---------------------------------------------------------

    async def _identity(self, run: CallState, script: Script) -> None:
        check = script.identity
        expected = run.context.birth_year
        tries = 0
        template, key = check.prompt, "identity.prompt"
        repeats = 0
        while tries < check.tries:
            prompt = await self.io.prompt(run, script, key, template)
            keys = await self.io.digits(run, prompt, 4, script.timeout_s)
            if "*" in keys and repeats < MAX_REPEATS:
                repeats += 1
                continue
            tries += 1
            if expected is not None and keys == f"{expected:04d}":
                run.verified = True
                for r in run.results:
                    r.identity_verified = True
                return
            template, key = check.retry, "identity.retry"
        language = run.context.staff_language
        summary = (ticket_text(language, TicketText.IDENTITY_NO_BIRTH_YEAR) if expected is None
                   else ticket_text(language, TicketText.IDENTITY_FAILED, tries=check.tries))
        run.results[0].tickets.append(TicketRequest(
            TicketReason.IDENTITY_FAILED, Severity.LOW, summary, script.id))
        await self.io.play(run, script, "identity.failed", check.failed)
        await run.channel.hangup()
        raise CallEnded(ScriptOutcome.IDENTITY_FAILED)

    async def _consent(self, run: CallState, script: Script) -> None:
        consent = script.consent
        tries = 0
        repeats = 0
        prefix: str | None = None
        while tries <= script.retries:
            if prefix:
                await self.io.message(run, script, prefix)
            prompt = await self.io.prompt(run, script, "consent.prompt", consent.prompt)
            keys = await self.io.digits(run, prompt, 1, script.timeout_s)
            if keys == "1":
                return
            if keys == "2":
                await self.io.play(run, script, "consent.declined", consent.declined)
                await run.channel.hangup()
                raise CallEnded(ScriptOutcome.REFUSED)
            if keys == "*" and repeats < MAX_REPEATS:
                repeats += 1
                prefix = None
                continue
            if keys == "0":
                await self.escalation.operator(run, script, None)
                prefix = None
                continue
            tries += 1
            prefix = "timeout" if keys == "" else "invalid"
        # No answer to "is now a good time?": not a refusal, try again another day.
        await self.io.play(run, script, "consent.declined", consent.declined)
        await run.channel.hangup()
        raise HungUp

    # -- questions --------------------------------------------------------------------

    async def _questions(self, run: CallState, script: Script) -> None:
        values = run.values[script.id]
        for q in script.questions:
            if q.id in run.answered[script.id]:
                continue
            if q.when is not None and not q.when.holds(condition_values(script, values)):
                continue
            if q.kind is QuestionKind.MESSAGE:
                await self.io.play(run, script, f"q.{q.id}", q.text)
                continue
            got = await self._ask(run, script, q)
            if isinstance(got, _Clip):
                if self._can_defer(script, q):
                    # Nothing depends on this transcript: the spoken answer is stored now,
                    # before the call moves on, and its transcript completes the row later
                    # while the call goes on.
                    first = self.voice.before_transcript(script, q, got.audio, got.offset_ms)
                    await self.sink.save(first)
                    run.answered[script.id].add(q.id)
                    if not self.voice.can_transcribe(script):
                        run.result.answers.append(first)
                        continue
                    run.pending.append(asyncio.create_task(
                        self._transcribe_later(run.result, script, q, got)))
                    continue
                got = await self.voice.free(script, q, got.audio, got.offset_ms)
            answer = self.escalation.mark_red_flags(run, script, q, got)
            await self.sink.save(answer)
            run.result.answers.append(answer)
            if answer.answered:
                values[q.id] = answer.typed_value()
                run.answered[script.id].add(q.id)
            if answer.red_flag is not None:
                await self.escalation.act_on_red_flags(run, script, q)

    @staticmethod
    def _can_defer(script: Script, q: Question) -> bool:
        """True when no red flag or later condition reads this answer."""
        if q.red_flags:
            return False
        for other in script.questions:
            names = set(other.when.names) if other.when else set()
            for flag in other.red_flags:
                names |= flag.condition.names
            if q.id in names:
                return False
        return True

    async def _transcribe_later(self, result: ScriptResult, script: Script, q: Question,
                                clip: _Clip) -> None:
        answer = await self.voice.free(script, q, clip.audio, clip.offset_ms)
        await self.sink.save(answer)
        result.answers.append(answer)

    async def _ask(self, run: CallState, script: Script, q: Question) -> Answer | _Clip:
        """Ask until a valid answer or the tries run out. Raises HungUp / CallEnded."""
        speech = self.voice.accepts_speech(script, q)
        tries = 0
        repeats = 0
        prefix: str | None = None
        while True:
            if prefix:
                await self.io.message(run, script, prefix)
                prefix = None
            prompt = await self.io.prompt(run, script, f"q.{q.id}", q.text)
            outcome: Answer | _Clip | Signal
            if q.kind is QuestionKind.VOICE:
                outcome = await self._ask_voice(run, script, q, prompt)
            elif speech:
                outcome = await self._ask_closed_by_voice(run, script, q, prompt)
                if outcome is Signal.NOT_UNDERSTOOD:
                    speech = False
                    prefix = "use_keypad"
                    continue
            else:
                keys = await self.io.keys(run, prompt, q.max_digits, script.timeout_s)
                outcome = read_keys(script, q, keys.digits)
                if isinstance(outcome, Answer):
                    outcome = replace(outcome, offset_ms=keys.offset_ms)
            if isinstance(outcome, Answer | _Clip):
                return outcome
            if outcome is Signal.REPEAT:
                if repeats < MAX_REPEATS:
                    repeats += 1
                    continue
                outcome = Signal.INVALID
            if outcome is Signal.OPERATOR:
                await self.escalation.operator(run, script, q)
                continue
            if outcome is Signal.OPT_OUT:
                await self.escalation.opt_out(run, script)
                continue
            tries += 1
            if tries > script.retries:
                return new_answer(script, q, AnswerSource.NONE, None,
                                  note=f"no valid answer after {tries} tries")
            prefix = "timeout" if outcome is Signal.TIMEOUT else "invalid"

    async def _ask_closed_by_voice(self, run: CallState, script: Script, q: Question,
                                   prompt: Prompt) -> Answer | Signal:
        if run.channel.hung_up:
            raise HungUp
        rec = await run.channel.record(prompt, CLOSED_VOICE_SECONDS, CLOSED_VOICE_SILENCE,
                                       "0123456789*#")
        if run.channel.hung_up:
            raise HungUp
        if rec.digit and rec.digit != "#":
            read = read_keys(script, q, rec.digit)
            return replace(read, offset_ms=rec.offset_ms + rec.duration_ms) \
                if isinstance(read, Answer) else read
        if rec.audio is None or rec.duration_ms < MIN_CLIP_MS:
            return Signal.TIMEOUT
        return await self.voice.closed(script, q, rec.audio, rec.offset_ms)

    async def _ask_voice(self, run: CallState, script: Script, q: Question,
                         prompt: Prompt) -> _Clip | Signal:
        if run.channel.hung_up:
            raise HungUp
        rec = await run.channel.record(prompt, q.max_seconds, OPEN_VOICE_SILENCE, "#*09")
        if rec.audio is not None and rec.duration_ms >= MIN_CLIP_MS:
            # A spoken answer is kept even if the caller hangs up right after it.
            return _Clip(rec.audio, rec.offset_ms)
        if run.channel.hung_up:
            raise HungUp
        return {"*": Signal.REPEAT, "0": Signal.OPERATOR, "9": Signal.OPT_OUT}.get(
            rec.digit or "", Signal.TIMEOUT)


async def run_script(script: Script, channel: Channel, context: CallContext,
                     interpreter: ScriptInterpreter) -> ScriptResult:
    """Run `script` over `channel` with `interpreter`'s prompts, recognizer and sink."""
    return await interpreter.run(script, channel, context)
