"""The texts of the messages sent to patients, per locale, and how they are filled in.

Privacy (issue 12): a body holds the hospital's name, one neutral sentence, and for a
questionnaire the link; never a diagnosis, a department, a result or the patient's name.
Every template ends with how to stop messages (TD / 退订 / STOP). A value a template needs
and the caller does not have is a `MissingValue`: that one message is blocked with the
name of the value, the batch goes on.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass

from core.enums import MessagePurpose
from core.sms_text import count


class MissingValue(Exception):
    """A template needs a value the caller did not give (`name`)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the template needs {{{name}}}")
        self.name = name


@dataclass(frozen=True, slots=True)
class SmsTemplate:
    key: str
    purpose: MessagePurpose
    texts: Mapping[str, str]  # locale -> text with {placeholders}

    def fields(self, locale: str) -> tuple[str, ...]:
        return tuple(name for _, name, _, _ in string.Formatter().parse(self.text(locale))
                     if name)

    def text(self, locale: str) -> str:
        return self.texts.get(locale) or self.texts[FALLBACK_LOCALE]

    def render(self, locale: str, values: Mapping[str, str]) -> str:
        for name in self.fields(locale):
            if not values.get(name):
                raise MissingValue(name)
        return self.text(locale).format_map(values)

    def params(self, locale: str, body: str) -> tuple[str, ...] | None:
        """The values `render` put into `body`, in the order the text in `locale` names
        them, without {hospital}: what a gateway that keeps its own approved copy of the
        template sends with the template's id (the approved sign carries the hospital's
        name). None when `body` does not read as that text."""
        pattern, seen = [], set()
        for literal, name, _, _ in string.Formatter().parse(self.text(locale)):
            pattern.append(re.escape(literal))
            if name:
                pattern.append(f"(?P={name})" if name in seen else f"(?P<{name}>.+?)")
                seen.add(name)
        match = re.fullmatch("".join(pattern), body, re.DOTALL)
        if match is None:
            return None
        return tuple(match[name] for name in dict.fromkeys(self.fields(locale))
                     if name != "hospital")


FALLBACK_LOCALE = "zh-CN"

TEMPLATES: dict[str, SmsTemplate] = {t.key: t for t in (
    SmsTemplate("questionnaire_link", MessagePurpose.QUESTIONNAIRE_LINK, {
        "zh-CN": "【{hospital}】您好，邀请您填写一份简短问卷：{link} 回复TD退订",
        "en": "{hospital}: please fill in a short questionnaire: {link} Reply STOP to opt out",
    }),
    SmsTemplate("red_flag_notice", MessagePurpose.RED_FLAG_NOTICE, {
        "zh-CN": "【{hospital}】您好，我院护士将在{hours}小时内给您回电，请保持电话畅通。"
                 "回复TD退订",
        "en": "{hospital}: a nurse will call you within {hours} hours. Please keep your phone "
              "at hand. Reply STOP to opt out",
    }),
    SmsTemplate("revisit_reminder", MessagePurpose.REMINDER, {
        "zh-CN": "【{hospital}】您好，温馨提醒：请按约定时间来院复诊。回复TD退订",
        "en": "{hospital}: a reminder of your return visit as arranged. Reply STOP to opt out",
    }),
    SmsTemplate("medication_reminder", MessagePurpose.REMINDER, {
        "zh-CN": "【{hospital}】您好，温馨提醒：请按医嘱按时用药。回复TD退订",
        "en": "{hospital}: a reminder to take your medicine as prescribed. Reply STOP to "
              "opt out",
    }),
)}


SAMPLE_LINK = "https://example.org/q/" + "x" * 35  # a link as long as a real one


@dataclass(frozen=True, slots=True)
class CountedText:
    """A template's text in one locale and what the counter says of it filled in (the
    hospital's name, a link at its real length): characters, alphabet, parts."""

    key: str
    purpose: MessagePurpose
    locale: str
    text: str
    chars: int
    encoding: str  # gsm7 | ucs2
    parts: int


def counted_texts(hospital: Mapping[str, str]) -> list[CountedText]:
    rows: list[CountedText] = []
    for template in TEMPLATES.values():
        for locale, text in template.texts.items():
            sample = text.format_map({"hospital": hospital.get(locale, ""),
                                      "link": SAMPLE_LINK, "hours": "4"})
            c = count(sample)
            rows.append(CountedText(template.key, template.purpose, locale, text, c.chars,
                                    c.encoding.value, c.segments))
    return rows
