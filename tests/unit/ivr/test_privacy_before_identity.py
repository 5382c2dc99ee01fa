"""Nothing private before the callee has pressed a key and passed the identity check.

Every shipped script, in every locale, is walked by callers who never get that far (an
answering machine, someone who declines, someone who hangs up, a wrong person, someone who
asks for a member of staff) and by the patient. Before the greeting (the first private
prompt) only the open parts may play, and no text may hold the patient's name, the
department or a question; for the callers who never pass, the greeting never plays at all.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ivr.catalog import script_files
from ivr.interpreter import ScriptInterpreter
from ivr.script_loader import load_script
from ivr.script_model import OPEN_VARIABLES, Script, plays_before_identity
from ivr.testing import Action, HangUp, Press, ScriptedChannel, Silence
from tests.unit.ivr.conftest import call_context

REPO = Path(__file__).resolve().parents[3]
SCRIPTS = script_files(REPO / "scripts")
NAME, DEPARTMENT = "Wang Fang", "Cardiology"

NEVER_VERIFIED: dict[str, list[Action]] = {
    "answering machine": [Silence()] * 12,
    "declines": [Press("2")],
    "hangs up at once": [HangUp()],
    "hangs up at the consent question": [Silence(), HangUp()],
    "wrong person": [Press("1"), Press("1111#"), Press("2222#"), Press("3333#")],
    "asks for staff": [Press("0")],
    "presses nonsense": [Press("7"), Press("5"), Press("#"), Press("1"), Press("19#")],
}
PATIENT: list[Action] = [Press("1"), Press("1980#"), *[Press("1")] * 30, *[Silence()] * 10]


def _script_id(path: Path) -> str:
    return "/".join(path.parts[-3:])


@pytest.mark.parametrize("path", SCRIPTS, ids=_script_id)
def test_open_parts_use_open_variables_only(path: Path) -> None:
    script = load_script(path)
    open_parts = [(key, t) for key, t in script.templates() if plays_before_identity(key)]
    assert {key for key, _ in open_parts} >= {"msg.opening", "consent.prompt",
                                              "identity.prompt"}
    for key, template in open_parts:
        assert template.variables <= OPEN_VARIABLES, (key, template.source)


def _before_greeting(channel: ScriptedChannel, script: Script) -> tuple[list[str], list[str]]:
    keys = [k.split("/", 1)[1] for k in channel.keys]
    end = keys.index("greeting") if "greeting" in keys else len(keys)
    return keys[:end], channel.texts[:end]


def _assert_nothing_private(keys: list[str], texts: list[str], script: Script) -> None:
    assert keys[:2] == ["msg.opening", "consent.prompt"] or keys == ["msg.opening"] or not keys
    for key in keys:
        assert plays_before_identity(key), key
    questions = [q.text.source for q in script.questions]
    for text in texts:
        assert NAME not in text and DEPARTMENT not in text, text
        assert text not in questions, text


@pytest.mark.parametrize("who", sorted(NEVER_VERIFIED))
@pytest.mark.parametrize("path", SCRIPTS, ids=_script_id)
async def test_who_never_passes_hears_nothing_private(
        path: Path, who: str, interpreter_factory: Callable[..., ScriptInterpreter],
        tmp_path: Path) -> None:
    script = load_script(path)
    channel = ScriptedChannel(NEVER_VERIFIED[who], tmp_path)
    result = await interpreter_factory().run(script, channel, call_context(
        staffed_hours=False))
    keys, texts = _before_greeting(channel, script)
    assert len(keys) == len(channel.keys), "the greeting played to someone not verified"
    assert not result.identity_verified and not result.answers
    _assert_nothing_private(keys, texts, script)


@pytest.mark.parametrize("path", SCRIPTS, ids=_script_id)
async def test_the_patient_hears_the_greeting_only_after_identity(
        path: Path, interpreter_factory: Callable[..., ScriptInterpreter],
        tmp_path: Path) -> None:
    script = load_script(path)
    channel = ScriptedChannel(PATIENT, tmp_path)
    result = await interpreter_factory().run(script, channel, call_context())
    keys, texts = _before_greeting(channel, script)
    assert result.identity_verified
    assert keys == ["msg.opening", "consent.prompt", "identity.prompt"]
    _assert_nothing_private(keys, texts, script)
    greeting = channel.texts[len(keys)]
    assert NAME in greeting  # what the patient hears once verified: who the call is for
