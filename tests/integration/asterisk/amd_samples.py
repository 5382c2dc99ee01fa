"""The labelled set for answering-machine detection: voicemail greetings and people picking up.

Every sample is speech from espeak-ng (zh-CN, en-US, ko-KR), made into what a phone line
carries (8 kHz mono mu-law WAV, SIPp's `rtp_stream` format) with sox, some with line noise:

- machines: a carrier's or a person's voicemail greeting (a monologue of 3 to 9 s) ending
  with a beep, at two speaking rates, with and without noise, some after a short silence;
- people: "喂？", "hello?", "여보세요?" and the like, a short word then silence, and a
  person who talks on ("喂，你好，哪位？").

`build(out_dir)` writes them (once per directory) and returns them with their labels.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

VOICES = {"zh-CN": "cmn", "en-US": "en-us", "ko-KR": "ko"}

GREETINGS = {
    "zh-CN": ["您好，您拨打的用户暂时无法接通，请在提示音后留言，留言完毕请挂机。",
              "你好，我是王明，现在不方便接听电话，请在嘀声后留下您的姓名和电话，我会尽快回复。",
              "您好，这里是张家，我们现在不在家，有事请留言，谢谢。"],
    "en-US": ["Hi, you have reached John Smith. I can't take your call right now. Please "
              "leave your name and number after the tone and I will get back to you.",
              "The person you are calling is not available. Please leave a message after the "
              "tone. When you have finished recording, you may hang up.",
              "Hello, this is the Miller family. We are not home right now, leave a message."],
    "ko-KR": ["안녕하세요, 지금은 전화를 받을 수 없습니다. 삐 소리 후에 메시지를 남겨 주세요.",
              "고객님이 전화를 받을 수 없어 음성사서함으로 연결됩니다. 삐 소리 후 말씀하세요.",
              "안녕하세요, 김민수입니다. 지금 통화가 어렵습니다. "
              "메시지를 남겨 주시면 연락드리겠습니다."],
}

PICKUPS = {
    "zh-CN": ["喂？", "喂，你好。", "哎，哪位？", "喂", "你好"],
    "en-US": ["Hello?", "Hello.", "Yes?", "Hi.", "Speaking."],
    "ko-KR": ["여보세요?", "네.", "여보세요.", "네, 말씀하세요.", "예?"],
}
TALKERS = {
    "zh-CN": ["喂，你好，哪位？", "喂，你好，请问是哪位啊？"],
    "en-US": ["Hello, who is this?", "Hello? Yes, who's calling please?"],
    "ko-KR": ["여보세요, 누구세요?", "여보세요? 네, 누구시죠?"],
}


@dataclass(frozen=True)
class Sample:
    name: str
    machine: bool  # the truth: a voicemail greeting (True) or a person (False)
    kind: str
    locale: str
    wav: Path


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)


def _speech(text: str, locale: str, speed: int, raw: Path) -> None:
    _run("espeak-ng", "-v", VOICES[locale], "-s", str(speed), "-w", str(raw), text)


def _line(src: Path, out: Path, noise: float, lead_ms: int, tail_ms: int,
          beep: bool, tmp: Path) -> None:
    """`src` as a phone line carries it: leading silence, optional beep, trailing silence,
    optional noise mixed in, 8 kHz mono mu-law."""
    parts = []
    if lead_ms:
        lead = tmp / "lead.wav"
        _run("sox", "-n", "-r", "8000", "-c", "1", str(lead), "trim", "0",
             f"{lead_ms / 1000}")
        parts.append(str(lead))
    speech = tmp / "speech8k.wav"
    _run("sox", str(src), "-r", "8000", "-c", "1", str(speech))
    parts.append(str(speech))
    if beep:
        tone = tmp / "beep.wav"
        _run("sox", "-n", "-r", "8000", "-c", "1", str(tone), "synth", "0.6", "sine", "1000",
             "vol", "0.5")
        parts.append(str(tone))
    tail = tmp / "tail.wav"
    _run("sox", "-n", "-r", "8000", "-c", "1", str(tail), "trim", "0", f"{tail_ms / 1000}")
    parts.append(str(tail))
    joined = tmp / "joined.wav"
    _run("sox", *parts, str(joined))
    if noise:
        length = subprocess.run(["soxi", "-D", str(joined)], check=True, capture_output=True,
                                text=True).stdout.strip()
        hiss = tmp / "noise.wav"
        _run("sox", "-n", "-r", "8000", "-c", "1", str(hiss), "synth", length, "pinknoise",
             "vol", str(noise))
        mixed = tmp / "mixed.wav"
        _run("sox", "-m", str(joined), str(hiss), str(mixed))
        joined = mixed
    _run("sox", str(joined), "-r", "8000", "-c", "1", "-e", "mu-law", str(out))


def build(out_dir: Path) -> list[Sample]:
    """The labelled set (54 greetings, 63 people), written once into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / "tmp"
    tmp.mkdir(exist_ok=True)
    plan: list[tuple[str, bool, str, str, str, int, float, int, int, bool]] = []
    for locale, texts in GREETINGS.items():
        for i, text in enumerate(texts):
            for speed in (150, 185):
                for noise, lead in ((0.0, 0), (0.02, 300), (0.05, 700)):
                    plan.append((f"machine-{locale}-{i}-{speed}-{int(noise * 100)}", True,
                                 "greeting", locale, text, speed, noise, lead, 6000, True))
    for locale, words in PICKUPS.items():
        for i, text in enumerate(words):
            for noise, lead in ((0.0, 200), (0.03, 500), (0.05, 900)):
                plan.append((f"person-{locale}-{i}-{int(noise * 100)}", False, "pickup",
                             locale, text, 170, noise, lead, 6000, False))
        for i, text in enumerate(TALKERS[locale]):
            for noise, lead in ((0.0, 200), (0.03, 400), (0.05, 600)):
                plan.append((f"person-{locale}-talks{i}-{int(noise * 100)}", False,
                             "talks on", locale, text, 175, noise, lead, 6000, False))
    samples = []
    for name, machine, kind, locale, text, speed, noise, lead, tail, beep in plan:
        wav = out_dir / f"{name}.wav"
        if not wav.exists():
            raw = tmp / "raw.wav"
            _speech(text, locale, speed, raw)
            _line(raw, wav, noise, lead, tail, beep, tmp)
        samples.append(Sample(name, machine, kind, locale, wav))
    return samples


def greeting(out_dir: Path, locale: str = "en-US", noise: float = 0.02) -> Path:
    """One voicemail greeting (the first of `locale`, with its beep and 6 s of line after
    it), for a single call; `noise`: the line's hiss (0.004: a quiet line, where the
    silence after the beep reads as silence)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    wav = out_dir / f"greeting-{locale}-{noise:g}.wav"
    if not wav.exists():
        raw = out_dir / "raw.wav"
        _speech(GREETINGS[locale][0], locale, 160, raw)
        _line(raw, wav, noise, 300, 6000, True, out_dir)
    return wav


def pickup(out_dir: Path, locale: str = "en-US") -> Path:
    """A person picking up ("Hello?", then 6 s of a quiet room on a hissing line)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    wav = out_dir / f"pickup-{locale}.wav"
    if not wav.exists():
        raw = out_dir / "raw.wav"
        _speech(PICKUPS[locale][0], locale, 170, raw)
        _line(raw, wav, 0.02, 200, 6000, False, out_dir)
    return wav
