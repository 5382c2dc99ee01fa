"""ivr: question scripts, prompts, keypad and voice answers, one interpreter for every channel.

The seams, by the names the house plan uses: `ivr.Channel` (ivr/channel.py),
`ivr.SpeechRecognizer` (ivr/speech.py), `ivr.TextToSpeech` (ivr/tts.py). The interpreter is
`ivr.interpreter.ScriptInterpreter`; fakes for tests live in `ivr.testing`.
"""

from __future__ import annotations

from ivr.channel import Channel
from ivr.speech import SpeechRecognizer
from ivr.tts import TextToSpeech

__all__ = ["Channel", "SpeechRecognizer", "TextToSpeech"]
