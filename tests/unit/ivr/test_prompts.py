"""Patient data is data: it renders as one harmless line, never as template code."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.prompts import PromptContext, PromptRenderer, speakable
from ivr.script_loader import load_script
from tests.unit.ivr.conftest import ALL_KINDS, write_script

HOSTILE = [
    'Wang "Fang"',
    "Li\nNa\r\n",
    "{{ 7*7 }}",
    "{% for x in range(9) %}{{ x }}{% endfor %}",
    '"\nHANGUP\n',
    "EXEC System rm -rf /",
    "Kim\x00\x1b[2J\u2028Park",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
]


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> object:
    return load_script(write_script(tmp_path_factory.mktemp("s"),
                                    ALL_KINDS.format(locale="en-US")))


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_patient_name_renders_harmlessly(script: object, name: str) -> None:
    from ivr.script_model import Script

    assert isinstance(script, Script)
    text = PromptRenderer().render(script.greeting,
                                   PromptContext(patient_name=name, patient_title=name,
                                                 hospital=name, department=name),
                                   verified=False)
    assert "49" not in text
    assert "\n" not in text and "\r" not in text and "\x00" not in text
    assert '"' not in text and "{" not in text and "}" not in text
    assert text.startswith("Hello")


def test_agi_keywords_stay_inside_one_line(script: object) -> None:
    from ivr.script_model import Script

    assert isinstance(script, Script)
    text = PromptRenderer().render(script.greeting,
                                   PromptContext(patient_name='"\nHANGUP\n'), verified=True)
    assert text.count("HANGUP") == 1 and "\n" not in text


def test_visit_facts_only_after_verification(script: object) -> None:
    from ivr.script_model import Script

    assert isinstance(script, Script)
    ctx = PromptContext(visit={"procedure": "bypass surgery"})
    template = script.question("pain_yn").text
    assert "bypass" in PromptRenderer().render(template, ctx, verified=True)
    assert "bypass" not in PromptRenderer().render(template, ctx, verified=False)


def test_static_prompt_renders_with_hospital_only(tmp_path: Path) -> None:
    script = load_script(write_script(tmp_path, ALL_KINDS.format(locale="en-US")))
    assert PromptRenderer().render_static(script.closing, "Demo") == "Thank you, goodbye."


@given(st.text(max_size=300))
def test_speakable_is_always_one_short_line(value: str) -> None:
    out = speakable(value)
    assert len(out) <= 80
    assert not any(ch in out for ch in '\n\r\x00{}"\\`$;')
    assert out == out.strip()
