"""The state of one running call and the interpreter's few ways of speaking to it.

Internal to the interpreter (`ivr.interpreter`, `ivr.escalation`): `HungUp` and
`CallEnded` are control flow inside one run and never leave `ScriptInterpreter.run_many`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from core.enums import QuestionKind, ScriptOutcome
from ivr.call_context import CallContext
from ivr.channel import Channel, DigitsResult, Prompt
from ivr.prompt_maker import PromptSource
from ivr.results import Answer, ScriptResult
from ivr.script_model import RedFlag, Script, Template, plays_before_identity


class HungUp(Exception):
    """The far end went away."""


class CallEnded(Exception):
    """The call ended on purpose (transfer, opt-out, refusal, identity failure)."""

    def __init__(self, outcome: ScriptOutcome) -> None:
        super().__init__(outcome.value)
        self.outcome = outcome


@dataclass
class CallState:
    """One call (one or more merged scripts) as the interpreter runs it."""

    channel: Channel
    context: CallContext
    results: list[ScriptResult]
    verified: bool = False
    current: int = 0
    values: dict[str, dict[str, Any]] = field(default_factory=dict)  # script -> qid -> value
    answered: dict[str, set[str]] = field(default_factory=dict)
    escalated: set[str] = field(default_factory=set)
    pending_flags: list[RedFlag] = field(default_factory=list)  # raised by the last answer
    finished: set[int] = field(default_factory=set)  # scripts whose questions all ran
    pending: list[asyncio.Task[None]] = field(default_factory=list)  # transcriptions

    @property
    def result(self) -> ScriptResult:
        return self.results[self.current]


def condition_values(script: Script, values: dict[str, Any]) -> dict[str, Any]:
    """Every question id of `script` -> its typed answer, None when not answered."""
    out: dict[str, Any] = {q.id: None for q in script.questions}
    out.update(values)
    return out


def first_unanswered(script: Script, values: dict[str, Any],
                     answered: set[str]) -> str | None:
    """The first question a call would still ask (its `when:` holding over `values`), or
    None when nothing is left: where a resumed call starts, and whether it needs to."""
    current = condition_values(script, values)
    for q in script.questions:
        if q.kind is QuestionKind.MESSAGE or q.id in answered:
            continue
        if q.when is None or q.when.holds(current):
            return q.id
    return None


def script_answers(script: Script, earlier: Iterable[Answer]) -> tuple[dict[str, Any], set[str]]:
    """The typed values and the answered question ids of `script` among earlier answers
    (only answers of the same script version count)."""
    mine = [a for a in earlier if a.script_id == script.id
            and a.script_version == script.version and a.answered]
    return {a.question_id: a.typed_value() for a in mine}, {a.question_id for a in mine}


class CallIO:
    """Prompts rendered for this call and played on its channel; hangups become HungUp."""

    def __init__(self, prompts: PromptSource) -> None:
        self.prompts = prompts

    async def prompt(self, state: CallState, script: Script, key: str,
                     template: Template) -> Prompt:
        """The prompt `key` of `script` for this call. Raises RuntimeError for a private
        part (greeting, question, closing) while identity is not verified: an interpreter
        bug must end the call, never speak the patient's name to whoever picked up."""
        if not state.verified and not plays_before_identity(key):
            raise RuntimeError(f"{script.id}/{key} may not play before identity is verified")
        return await self.prompts.prompt(script, key, template, state.context.prompt,
                                         state.verified)

    async def play(self, state: CallState, script: Script, key: str,
                   template: Template) -> None:
        if state.channel.hung_up:
            raise HungUp
        result = await state.channel.play(await self.prompt(state, script, key, template))
        if result.hung_up or state.channel.hung_up:
            raise HungUp

    async def message(self, state: CallState, script: Script, key: str) -> None:
        await self.play(state, script, f"msg.{key}", script.message(key))

    async def digits(self, state: CallState, prompt: Prompt | None, max_digits: int,
                     timeout_s: float) -> str:
        return (await self.keys(state, prompt, max_digits, timeout_s)).digits

    async def keys(self, state: CallState, prompt: Prompt | None, max_digits: int,
                   timeout_s: float) -> DigitsResult:
        """The keys pressed, and when in the call they ended (for the answer's offset)."""
        if state.channel.hung_up:
            raise HungUp
        got = await state.channel.collect_digits(prompt, max_digits, timeout_s, "#")
        if state.channel.hung_up:
            raise HungUp
        return got
