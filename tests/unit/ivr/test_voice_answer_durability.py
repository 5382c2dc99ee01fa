"""A spoken answer must be in the store before the call moves on: a dialer killed while
the next prompt plays must not lose it (the truth log counts a reply followed by the next
prompt as handled, and the call-path fault test checks every handled reply is stored)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from pathlib import Path

from core.enums import QuestionKind
from ivr.channel import PlayResult, Prompt
from ivr.interpreter import ScriptInterpreter
from ivr.prompt_maker import PromptMaker
from ivr.results import Answer, InMemoryAnswerSink
from ivr.script_model import Script
from ivr.testing import Action, Press, ScriptedChannel, Speak
from tests.unit.ivr.conftest import call_context

START = [Press("1"), Press("1980#")]  # consent, identity


class StoreLikeSink(InMemoryAnswerSink):
    """Saves a spoken answer slowly, like a store's round trip: until the call plays its
    next prompt, or for a second if the interpreter waits for the save (as it should).
    So the outcome does not hang on how fast this machine renders prompts."""

    def __init__(self) -> None:
        super().__init__()
        self.next_prompt = asyncio.Event()

    async def save(self, answer: Answer) -> None:
        if answer.kind is QuestionKind.VOICE:
            self.next_prompt.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.next_prompt.wait(), 1.0)
        await super().save(answer)


class LedgerChannel(ScriptedChannel):
    """Notes, as each prompt starts playing, which questions the sink already holds."""

    def __init__(self, actions: Iterable[Action], work_dir: Path,
                 sink: StoreLikeSink) -> None:
        super().__init__(actions, work_dir)
        self.sink = sink
        self.stored_at: dict[str, set[str]] = {}

    async def play(self, prompt: Prompt, interrupt_digits: str = "") -> PlayResult:
        self.stored_at[prompt.key] = {a.question_id for a in self.sink.answers}
        self.sink.next_prompt.set()
        return await super().play(prompt, interrupt_digits)


async def test_a_spoken_answer_is_stored_before_the_call_moves_on(
        script_factory: Callable[..., Script], prompt_maker: PromptMaker,
        tmp_path: Path) -> None:
    sink = StoreLikeSink()
    channel = LedgerChannel([*START, Press("2"), Press("1"), Press("4"), Press("120#"),
                             Speak("你好")], tmp_path, sink)
    interpreter = ScriptInterpreter(prompt_maker, sink, None, min_confidence=0.6)
    await interpreter.run(script_factory(locale="zh-CN"), channel, call_context())
    assert sink.answers[-1].question_id == "comment"  # stored in the end, but ...
    assert "comment" in channel.stored_at["test-all/closing"]  # ... not before the closing
