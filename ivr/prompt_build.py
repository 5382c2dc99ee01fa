"""Pre-render every static prompt of every script (`followup prompts build`, bench/prompts).

A prompt is static when its template depends on nothing but the hospital and the
emergency number (`Template.is_static`); prompts naming the patient, department or visit
are rendered at call time. Prompts a prompt pack overrides are not synthesised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ivr.prompts import PromptRenderer
from ivr.script_model import Script
from ivr.tts import PromptAudio, wav_seconds


@dataclass(frozen=True, slots=True)
class StaticPrompt:
    script_id: str
    locale: str
    key: str
    text: str


@dataclass
class BuildReport:
    prompts: int = 0  # distinct static prompts (script, locale, key)
    synthesised: int = 0
    cached: int = 0
    from_pack: int = 0
    dynamic: int = 0  # rendered at call time instead
    audio_seconds: float = 0.0  # of the synthesised WAVs
    paths: list[Path] = field(default_factory=list)


def static_prompts(scripts: Iterable[Script], hospital_for: Callable[[str], str],
                   emergency_number: str = "120", callback_number: str = ""
                   ) -> tuple[list[StaticPrompt], int]:
    """The static prompts of `scripts` (rendered text) and how many are dynamic."""
    renderer = PromptRenderer()
    out: list[StaticPrompt] = []
    dynamic = 0
    for script in scripts:
        for key, template in script.templates():
            if not template.is_static:
                dynamic += 1
                continue
            text = renderer.render_static(template, hospital_for(script.locale),
                                          emergency_number, callback_number)
            out.append(StaticPrompt(script.id, script.locale, key, text))
    return out, dynamic


def build_static_prompts(scripts: Iterable[Script], audio: PromptAudio,
                         hospital_for: Callable[[str], str], emergency_number: str = "120",
                         callback_number: str = "",
                         progress: Callable[[StaticPrompt], None] | None = None) -> BuildReport:
    """Synthesise whatever static prompt is not cached yet (blocking: a CLI/bench call)."""
    prompts, dynamic = static_prompts(scripts, hospital_for, emergency_number,
                                      callback_number)
    report = BuildReport(prompts=len(prompts), dynamic=dynamic)
    for prompt in prompts:
        if audio.pack is not None and audio.pack.find(prompt.script_id, prompt.locale,
                                                      prompt.key):
            report.from_pack += 1
            continue
        path, made = audio.synthesise_blocking(prompt.text, prompt.locale)
        if made:
            report.synthesised += 1
            report.audio_seconds += wav_seconds(path)
        else:
            report.cached += 1
        report.paths.append(path)
        if progress is not None:
            progress(prompt)
    return report
