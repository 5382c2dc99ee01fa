"""What runs on an answered call: the plan's scripts over a `Channel`, answers stored as
they are given.

Both telephony backends (Asterisk's FastAGI session and the simulator) call the
`IvrCallHandler` with the call's `CallPlan` and a `Channel`; everything it needs is on the
plan, so nothing is read from the store between the answer and the first prompt. When the
IVR handed the call to a queue and nobody there took it, the backend calls
`handoff_unanswered` on the same call: the patient hears the safety message (red flag) or
"we will call you back" (the 0 key) before the line drops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from core.clock import Clock
from core.errors import TemporaryError
from core.store.db import Database
from dialer.attempt_log import AttemptLog
from dialer.call_plan import AttemptId, CallPlan
from dialer.call_result import CallIvrResult, combine
from ivr.channel import Channel
from ivr.interpreter import ScriptInterpreter
from ivr.prompt_maker import PromptSource
from ivr.results import Answer
from ivr.speech import SpeechRecognizer

log = logging.getLogger(__name__)


class CallHandler(Protocol):
    """What a telephony backend runs on an answered call (`IvrCallHandler`; tests use
    small scripted ones)."""

    async def run(self, plan: CallPlan, channel: Channel) -> CallIvrResult | None:
        """Run the plan's IVR over `channel`; the result is also left on `plan.result`.
        None when the IVR did not run: a machine answered (`plan.amd`)."""
        ...

    async def handoff_unanswered(self, plan: CallPlan, channel: Channel) -> None:
        """Nobody took the handoff: tell the patient what happens next, then hang up."""
        ...


Sleep = Callable[[float], Awaitable[None]]

# How long an answer's save waits for a store that is away (a restart, killed connections)
# before the call gives up on it; the wait backs off from the first to the longest pause.
ANSWER_RETRY_S = 120.0
ANSWER_RETRY_FIRST_S = 0.1
ANSWER_RETRY_LONGEST_S = 5.0
# A voicemail message starts after this much silence (the greeting and its beep are over),
# or not at all if the greeting goes on longer than the wait.
VOICEMAIL_SILENCE_S = 1.5
VOICEMAIL_WAIT_S = 30.0


class StoreAnswerSink:
    """Writes each answer to the store the moment the interpreter has it.

    The patient is on the line and the answer exists nowhere else, so a store that is away
    (`TemporaryError`: a restart, a terminated connection) is retried with backoff, in wall
    time (`sleep`; an outage lasts real seconds whatever the campaign clock's speed), for up
    to `retry_s`; `save_answer` is idempotent per question, so a retry after a commit
    whose reply was lost stores nothing twice. Raises the last `TemporaryError` after
    `retry_s`, and any other store error at once."""

    def __init__(self, db: Database, attempts: AttemptLog, attempt_id: AttemptId,
                 clock: Clock, sleep: Sleep = asyncio.sleep,
                 retry_s: float = ANSWER_RETRY_S) -> None:
        self._db = db
        self._attempts = attempts
        self._attempt_id = attempt_id
        self._clock = clock
        self._sleep = sleep
        self._retry_s = retry_s

    async def save(self, answer: Answer) -> None:
        waited = 0.0
        pause = ANSWER_RETRY_FIRST_S
        while True:
            try:
                await self._db.call(self._attempts.save_answer, self._attempt_id, answer,
                                    self._clock.now())
                return
            except TemporaryError as exc:
                if waited >= self._retry_s:
                    raise
                if not waited:
                    log.warning("attempt %s: answer %s/%s waits for the store (%s)",
                                self._attempt_id, answer.script_id, answer.question_id,
                                exc.message)
            await self._sleep(pause)
            waited += pause
            pause = min(pause * 2, ANSWER_RETRY_LONGEST_S)


class IvrCallHandler:
    """Runs the IVR for one answered call from its plan."""

    def __init__(self, db: Database, attempts: AttemptLog, prompts: PromptSource,
                 recognizer: SpeechRecognizer | None, clock: Clock,
                 min_confidence: float = 0.6) -> None:
        self._db = db
        self._attempts = attempts
        self._prompts = prompts
        self._recognizer = recognizer
        self._clock = clock
        self._min_confidence = min_confidence

    async def run(self, plan: CallPlan, channel: Channel) -> CallIvrResult | None:
        """Ask the plan's scripts; the result is also left on `plan.result`. Raises what
        the answer sink raises (a store fault) after the answers given so far are kept.
        A machine (`plan.amd`, see `dialer.answering_machine`) hears nothing of the
        script: None, and no result; it is left `plan.voicemail` after its beep when the
        plan has one, else hung up on without a word."""
        if plan.amd is not None and plan.amd.is_machine:
            if plan.voicemail is not None and await channel.wait_for_silence(
                    VOICEMAIL_SILENCE_S, VOICEMAIL_WAIT_S):
                played = await channel.play(plan.voicemail)
                plan.voicemail_left = not played.hung_up
            await channel.hangup()
            return None
        sink = StoreAnswerSink(self._db, self._attempts, plan.attempt_id, self._clock)
        interpreter = ScriptInterpreter(self._prompts, sink, self._recognizer,
                                        self._min_confidence)
        results = await interpreter.run_many(list(plan.scripts), channel, plan.context)
        plan.result = combine(results)
        return plan.result

    async def handoff_unanswered(self, plan: CallPlan, channel: Channel) -> None:
        """Nobody in the queue took the call: tell the patient what happens now, then
        hang up. A red flag hears the safety message (a nurse will call; the emergency
        number); a request for a person hears that we will call back."""
        result = plan.result
        source = result.transferring_result if result is not None else None
        script = next((s for s in plan.scripts if source and s.id == source.script_id),
                      plan.scripts[0])
        red_flag = source is not None and any(h.transferred for h in source.red_flags)
        key = "safety" if red_flag else "operator_unavailable"
        if not channel.hung_up:
            prompt = await self._prompts.prompt(script, f"msg.{key}", script.message(key),
                                                plan.context.prompt, False)
            await channel.play(prompt)
        await channel.hangup()
