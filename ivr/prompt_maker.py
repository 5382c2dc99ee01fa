"""Template + call data -> `Prompt` (text and WAV): the interpreter's source of prompts."""

from __future__ import annotations

from typing import Protocol

from ivr.channel import Prompt
from ivr.prompts import PromptContext, PromptRenderer
from ivr.script_model import Script, Template
from ivr.tts import PromptAudio


class PromptSource(Protocol):
    async def prompt(self, script: Script, key: str, template: Template,
                     context: PromptContext, verified: bool) -> Prompt:
        """Render `template` (restricted context unless `verified`) and get its audio.

        Raises TtsError when no audio can be made."""
        ...


class PromptMaker:
    """Renders text in the sandbox, then gets audio from `PromptAudio` (pack/cache/TTS)."""

    def __init__(self, audio: PromptAudio, renderer: PromptRenderer | None = None) -> None:
        self.audio = audio
        self.renderer = renderer or PromptRenderer()

    async def prompt(self, script: Script, key: str, template: Template,
                     context: PromptContext, verified: bool) -> Prompt:
        text = self.renderer.render(template, context, verified)
        path = await self.audio.audio(text, script.locale, script.id, key)
        return Prompt(audio=path, text=text, key=f"{script.id}/{key}")
