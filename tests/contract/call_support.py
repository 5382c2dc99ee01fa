"""What the dialer tests need to plan calls without speech synthesis: the script `s` the
seeded tasks name (one yes/no question, a red flag on yes), a prompt source that renders
text only, and a `CallPlanner` over them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from core.store.db import Database
from dialer.attempt_log import AttemptLog
from dialer.call_planner import CallPlanner, PlannerSettings, ScriptLibrary
from ivr.channel import Prompt
from ivr.prompts import PromptContext, PromptRenderer
from ivr.script_loader import load_script
from ivr.script_model import Script, Template

SCRIPT_S = """\
id: s
version: 1
locale: zh-CN
title: 测试
greeting: "您好，{{ patient.name }}{{ patient.title }}，这里是{{ hospital }}{{ department }}。"
questions:
  - id: ok
    kind: yes_no
    text: "您好些了吗？是请按1，不是请按2。"
  - id: pain
    kind: yes_no
    text: "还痛吗？是请按1，不是请按2。"
    red_flag:
      when: value
      severity: high
      action: transfer
      summary: still in pain
closing: "谢谢，再见。"
"""


def script_s(directory: Path) -> Script:
    path = directory / "s" / "v1" / "zh-CN.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SCRIPT_S, encoding="utf-8")
    return load_script(path)


class TextPrompts:
    """A `PromptSource` that renders the text and points at one silent WAV."""

    def __init__(self, silence: Path) -> None:
        self.silence = silence
        self.renderer = PromptRenderer()
        self.rendered: list[str] = []

    async def prompt(self, script: Script, key: str, template: Template,
                     context: PromptContext, verified: bool) -> Prompt:
        text = self.renderer.render(template, context, verified)
        self.rendered.append(text)
        return Prompt(audio=self.silence, text=text, key=f"{script.id}/{key}")


def planner(db: Database, attempts: AttemptLog, tmp_path: Path,
            scripts: Sequence[Script] | None = None) -> CallPlanner:
    """A planner over `scripts` (default: the script `s`), staffed round the clock."""
    scripts = scripts if scripts is not None else [script_s(tmp_path / "scripts")]
    return CallPlanner(db, attempts, ScriptLibrary(scripts, "zh-CN"),
                       TextPrompts(tmp_path / "silence.wav"),
                       PlannerSettings(hospital="示范医院", hospital_en="Demo Hospital",
                                       hospital_language="zh-CN", emergency_number="120",
                                       nurse_queue="followup-nurses",
                                       agent_queue="followup-agents",
                                       nurse_hours="00:00-24:00", hospital_tz="Asia/Shanghai"))
