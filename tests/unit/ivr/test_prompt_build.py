"""`followup prompts build`: every static prompt once; a second run synthesises nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import cli
from ivr.prompt_build import build_static_prompts, static_prompts
from ivr.script_loader import load_script
from ivr.testing import FakeTts, tone_pcm
from ivr.tts import EspeakTts, PromptAudio, PromptPack
from ivr.wav import write_wav
from tests.unit.ivr.conftest import ALL_KINDS, write_script


def test_static_prompts_skip_patient_dependent_ones(tmp_path: Path) -> None:
    script = load_script(write_script(tmp_path, ALL_KINDS.format(locale="en-US")))
    prompts, dynamic = static_prompts([script], lambda _: "Demo Hospital")
    keys = {p.key for p in prompts}
    assert "greeting" not in keys and "q.pain_yn" not in keys  # patient name / visit facts
    assert {"closing", "q.mood", "identity.prompt", "msg.safety"} <= keys
    assert dynamic == 2
    safety = next(p for p in prompts if p.key == "msg.safety")
    assert "120" in safety.text


def test_cold_then_warm_and_packs(tmp_path: Path) -> None:
    script = load_script(write_script(tmp_path, ALL_KINDS.format(locale="en-US")))
    write_wav(tmp_path / "packs" / "test-all" / "en-US" / "closing.wav", tone_pcm(50))
    engine = FakeTts()
    audio = PromptAudio(cache_dir=tmp_path / "cache", engines={"en-US": engine},
                        pack=PromptPack(tmp_path / "packs"))
    cold = build_static_prompts([script], audio, lambda _: "Demo")
    assert cold.from_pack == 1
    assert cold.synthesised == len(set(engine.calls)) == cold.prompts - 1 - cold.cached
    warm = build_static_prompts([script], audio, lambda _: "Demo")
    assert warm.synthesised == 0 and warm.cached == cold.synthesised + cold.cached


@pytest.mark.skipif(not EspeakTts.available(), reason="espeak-ng and sox are not installed")
def test_cli_build(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    write_script(scripts, ALL_KINDS.format(locale="ko-KR"), locale="ko-KR")
    runner = CliRunner()
    env = {"FOLLOWUP_SCRIPTS__DIR": str(scripts), "FOLLOWUP_CONFIG": ""}
    args = ["--data-dir", str(tmp_path / "var"), "prompts", "build"]
    first = runner.invoke(cli, args, env=env)
    assert first.exit_code == 0, first.output
    assert "1 script files" in first.output and " 0 synthesised" not in first.output
    second = runner.invoke(cli, args, env=env)
    assert " 0 synthesised" in second.output
    assert any((tmp_path / "var" / "prompt-cache" / "espeak-ng").rglob("*.wav"))
