"""Benchmark: synthesising every static prompt of every script, cold and warm.

    .venv/bin/python bench/prompts.py            # every script file (the issue's size)
    .venv/bin/python bench/prompts.py --quick    # the zh-CN scripts only

Cold: a fresh cache under var/bench/prompts/, every static prompt synthesised with
espeak-ng (8 kHz via sox), exactly as `followup prompts build` does; the figure is seconds
of synthesis per second of audio. Warm: the same build again, which must synthesise
nothing (`warm_synthesised` = 0). Baseline in the same run: one bare espeak-ng invocation
of a typical (the longest zh-CN) prompt, espeak-ng writing its own 22 kHz WAV (no sox, no
cache, best of 5), in seconds per second of audio;
`cold_vs_bare_espeak` = cold / baseline.
The last line printed is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.settings import HospitalSettings
from ivr.prompt_build import build_static_prompts, static_prompts
from ivr.script_loader import load_scripts
from ivr.tts import EspeakTts, PromptAudio

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "var" / "bench" / "prompts"


def bare_espeak_s_per_audio_s(text: str, voice: str, repeats: int = 5) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bare.wav"
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            subprocess.run(["espeak-ng", "-v", voice, "-w", str(out), text], check=True)
            best = min(best, time.perf_counter() - t0)
        with wave.open(str(out)) as wav:
            seconds = wav.getnframes() / wav.getframerate()
    return best / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="zh-CN scripts only")
    args = parser.parse_args()

    scripts = load_scripts(REPO / "scripts")
    if args.quick:
        scripts = [s for s in scripts if s.locale == "zh-CN"]
    hospital = HospitalSettings()

    def hospital_for(locale: str) -> str:
        return hospital.name if locale.startswith("zh") else hospital.name_en

    shutil.rmtree(WORK, ignore_errors=True)
    audio = PromptAudio(cache_dir=WORK / "prompt-cache", engines={}, fallback=EspeakTts())
    prompts, _ = static_prompts(scripts, hospital_for, hospital.emergency_number)
    print(f"{len(scripts)} script files, {len(prompts)} static prompts "
          f"({len({(p.locale, p.text) for p in prompts})} distinct texts)", flush=True)

    t0 = time.perf_counter()
    cold = build_static_prompts(scripts, audio, hospital_for, hospital.emergency_number)
    cold_s = time.perf_counter() - t0
    print(f"cold: {cold.synthesised} synthesised, {cold.audio_seconds:.1f} s of audio in "
          f"{cold_s:.2f} s", flush=True)

    warm_audio = PromptAudio(cache_dir=WORK / "prompt-cache", engines={},
                             fallback=EspeakTts())
    t0 = time.perf_counter()
    warm = build_static_prompts(scripts, warm_audio, hospital_for, hospital.emergency_number)
    warm_s = time.perf_counter() - t0
    print(f"warm: {warm.synthesised} synthesised, {warm.cached} cached, {warm_s:.3f} s",
          flush=True)

    typical = max(prompts, key=lambda p: len(p.text) if p.locale == "zh-CN" else 0)
    bare = bare_espeak_s_per_audio_s(typical.text, "cmn")
    cold_rate = cold_s / cold.audio_seconds if cold.audio_seconds else 0.0
    figures: dict[str, Any] = {
        "static_prompts": cold.prompts,
        "cold_synthesised": cold.synthesised,
        "cold_audio_s": round(cold.audio_seconds, 1),
        "cold_s": round(cold_s, 2),
        "cold_s_per_audio_s": round(cold_rate, 4),
        "bare_espeak_s_per_audio_s": round(bare, 4),
        "cold_vs_bare_espeak": round(cold_rate / bare, 2) if bare else None,
        "warm_s": round(warm_s, 3),
        "warm_synthesised": warm.synthesised,
    }
    print(f"cold {figures['cold_s_per_audio_s']} s per s of audio (bare espeak-ng "
          f"{figures['bare_espeak_s_per_audio_s']}, x{figures['cold_vs_bare_espeak']}); "
          f"warm run synthesised {warm.synthesised}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
