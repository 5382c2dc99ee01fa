"""Charts escape what they draw; both languages know every word and every problem."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from console.charts import Bar, bar_chart, fit_label, line_chart
from console.i18n import CATALOGUE, translate
from console.periods import local_time
from console.questions import IndexItem, short_wording

CONSOLE = Path(__file__).resolve().parents[3] / "console"


def test_bar_chart_escapes_labels_and_marks_suppressed_bars() -> None:
    svg = str(bar_chart([Bar("<script>x</script>", 4.2, 3.9, 4.5), Bar("food", None)],
                        max_value=5, title="Q&A"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "Q&amp;A" in svg
    assert svg.count("<rect") == 1 and svg.count('class="chart-ci"') == 1 and "–" in svg


def test_times_read_in_the_hospital_zone_with_the_offset_shown() -> None:
    at = dt.datetime(2026, 3, 10, 1, 0, 5, tzinfo=dt.UTC)
    assert local_time(at, "Asia/Shanghai") == "2026-03-10 09:00 UTC+8"
    assert local_time(at, "Asia/Shanghai", seconds=True) == "2026-03-10 09:00:05 UTC+8"
    assert local_time(at, "Asia/Kolkata") == "2026-03-10 06:30 UTC+5:30"
    assert local_time(at, "America/New_York") == "2026-03-09 21:00 UTC-4"
    # a discharge at 07:00 local is 23:00 UTC the day before: the local date is shown
    late = dt.datetime(2026, 3, 9, 23, 0, tzinfo=dt.UTC)
    assert local_time(late, "Asia/Shanghai", date_only=True) == "2026-03-10"
    assert local_time(None, "Asia/Shanghai") == ""


def test_long_labels_are_cut_to_their_column_and_kept_whole_on_hover() -> None:
    long = "您对这次住院期间护士的服务态度和专业水平总体满意吗？"
    cut = fit_label(long, 130)
    assert cut.endswith("…") and long.startswith(cut[:-1]) and len(cut) <= 11
    assert fit_label("overall", 130) == "overall"
    svg = str(bar_chart([Bar(long, 4.2)], max_value=5, title="t", label_width=140))
    assert f"<title>{long}</title>" in svg and f">{fit_label(long, 130)}</text>" in svg


def test_a_question_is_named_without_its_keypad_instructions() -> None:
    assert short_wording("您对这次住院总体满意吗？请按1到5打分。") == "您对这次住院总体满意吗？"
    assert short_wording("How satisfied were you? Press 1 to 5.") == "How satisfied were you?"
    assert short_wording("请说出您的感受。") == "请说出您的感受。"


def test_line_chart_breaks_at_missing_points() -> None:
    svg = str(line_chart([("2026-01", 3.0), ("2026-02", None), ("2026-03", 4.0),
                          ("2026-04", 4.5)], max_value=5, title="t"))
    assert svg.count("<circle") == 3 and svg.count("<polyline") == 1


def test_twelve_month_labels_name_the_year_only_where_it_changes() -> None:
    months = [f"2025-{m:02d}" for m in range(4, 13)] + ["2026-01", "2026-02", "2026-03"]
    svg = str(line_chart([(m, 50.0) for m in months], max_value=100, title="t"))
    labels = re.findall(r'class="chart-label">([^<]+)<', svg)
    assert labels == ["2025-04", *(f"{m:02d}" for m in range(5, 13)), "2026-01", "02", "03"]


def test_both_locales_have_the_same_keys() -> None:
    assert set(CATALOGUE["zh"]) == set(CATALOGUE["en"])
    assert translate("en", "report.note", n=5).startswith("Cells with fewer than 5")
    assert translate("fr", "nav.calls") == CATALOGUE["zh"]["nav.calls"]


def test_every_problem_and_template_key_is_translated() -> None:
    source = "\n".join(p.read_text() for p in CONSOLE.rglob("*.py"))
    problems = set(re.findall(r'FormError\(\s*"[a-z_]+",\s*"([a-z_]+)"', source))
    problems |= set(re.findall(r'raise FormError\(field, "([a-z_]+)"\)', source))
    assert problems, "the scan found no problems: the regex is stale"
    for problem in problems:
        assert f"problem.{problem}" in CATALOGUE["en"], problem
    templates = "\n".join(p.read_text() for p in (CONSOLE / "templates").glob("*.html"))
    for key in set(re.findall(r"t\('([a-z_]+\.[a-z_]+)'", templates)):
        assert key in CATALOGUE["en"], key


def test_every_ticket_reason_and_disposition_has_words() -> None:
    from console.forms import Disposition
    from core.enums import TicketReason

    for reason in TicketReason:
        assert f"reason.{reason.value}" in CATALOGUE["en"]
    for disposition in Disposition:
        assert f"disp.{disposition.value}" in CATALOGUE["zh"]


def test_every_stored_value_the_console_shows_has_words_in_both_languages() -> None:
    import core.enums
    from console.i18n import ENUM_PREFIXES

    for name, prefix in ENUM_PREFIXES.items():
        for member in getattr(core.enums, name):
            for lang in ("zh", "en"):
                assert f"{prefix}.{member.value}" in CATALOGUE[lang], (lang, name, member)
    # every template builds its enum keys from those prefixes
    templates = "\n".join(p.read_text() for p in (CONSOLE / "templates").glob("*.html"))
    used = set(re.findall(r"t\('([a-z_]+)\.' ~", templates))
    assert used and used <= {*ENUM_PREFIXES.values(), "sms_template"}, used
    # ... and the SMS templates by their keys
    from core.sms_templates import TEMPLATES

    for key in TEMPLATES:
        for lang in ("zh", "en"):
            assert f"sms_template.{key}" in CATALOGUE[lang], (lang, key)


def test_every_error_status_in_the_table_has_words() -> None:
    from console.web.errors import STATUS_BY_ERROR

    for cls, _status in STATUS_BY_ERROR:
        assert f"error.{cls.code}" in CATALOGUE["en"], cls


@pytest.mark.parametrize(("item", "value", "score"), [
    (IndexItem("s", "q", 1, 5), "1", 0.0),
    (IndexItem("s", "q", 1, 5), "4", 75.0),
    (IndexItem("s", "q", 0, 10), "10", 100.0),
    (IndexItem("s", "q", 1, 5), "6", None),  # outside the item's range: not scored
    (IndexItem("s", "q", 1, 5), "３", None),  # fullwidth digit: not a number here
    (IndexItem("s", "q", 0, 1, yes_no=True), "yes", 100.0),
    (IndexItem("s", "q", 0, 1, yes_no=True), "no", 0.0),
    (IndexItem("s", "q", 0, 1, yes_no=True), "true", None),
])
def test_index_items_score_answers_on_0_to_100(item: IndexItem, value: str,
                                               score: float | None) -> None:
    assert item.score(value) == score
