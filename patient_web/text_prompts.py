"""Prompts for a page: the interpreter's `PromptSource` without audio."""

from __future__ import annotations

from pathlib import Path

from ivr.channel import Prompt
from ivr.prompts import PromptContext, PromptRenderer
from ivr.script_model import Script, Template

_NO_AUDIO = Path()  # a page shows the text; nothing is ever played


class TextPrompts:
    """Renders each template in the interpreter's sandbox (the same restricted context
    before identity is verified); no speech is synthesised."""

    def __init__(self) -> None:
        self._renderer = PromptRenderer()

    async def prompt(self, script: Script, key: str, template: Template,
                     context: PromptContext, verified: bool) -> Prompt:
        return Prompt(audio=_NO_AUDIO, text=self._renderer.render(template, context, verified),
                      key=f"{script.id}/{key}")
