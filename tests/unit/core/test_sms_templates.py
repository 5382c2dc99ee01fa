"""A template's values read back from a body it rendered (for gateways that send their own
approved copy of the template with positional parameters)."""

from __future__ import annotations

import pytest

from core.sms_templates import TEMPLATES


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
@pytest.mark.parametrize(("key", "values", "params"), [
    ("questionnaire_link", {"link": "https://fu.example.org/q/a.b?c"},
     ("https://fu.example.org/q/a.b?c",)),
    ("red_flag_notice", {"hours": "4"}, ("4",)),
    ("revisit_reminder", {}, ()),
    ("medication_reminder", {}, ()),
])
def test_the_values_come_back_in_order_without_the_hospital(
        locale: str, key: str, values: dict[str, str], params: tuple[str, ...]) -> None:
    template = TEMPLATES[key]
    body = template.render(locale, {"hospital": "市第一人民医院 (Demo)", **values})
    assert template.params(locale, body) == params


def test_a_body_that_is_not_the_templates_text_reads_as_none() -> None:
    template = TEMPLATES["questionnaire_link"]
    body = template.render("zh-CN", {"hospital": "示范医院", "link": "https://x/q/1"})
    assert template.params("en", body) is None
    assert TEMPLATES["red_flag_notice"].params("zh-CN", body) is None
    assert template.params("zh-CN", body + " 附言") is None
