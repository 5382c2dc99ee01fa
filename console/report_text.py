"""One question's monthly figure as a reader reads it, by the question's kind, in the
reader's language: the report page, its Excel workbook and the CLI say the same words."""

from __future__ import annotations

from collections.abc import Callable

from console.i18n import translate
from console.questions import QuestionCatalog
from console.reports import QuestionStat

OptionLabel = Callable[[str], str]  # a choice option's stored value -> its label


def figure_text(q: QuestionStat, lang: str, label: OptionLabel = str) -> str:
    """`60.0% (95% CI 38.7%–78.1%)`, `3.40 (95% CI 2.91–3.89)`, `愈合良好 60.0% · 红肿 40.0%`,
    `中位数 120（四分位距 110–135）`, `12 条语音回答，3 条待复核`; the suppression note
    below the smallest cell shown."""
    if q.suppressed:
        return translate(lang, "report.suppressed")
    if q.kind == "yes_no" and q.mean is not None and q.low is not None and q.high is not None:
        return translate(lang, "report.fig_share", p=f"{q.mean:.1%}", low=f"{q.low:.1%}",
                         high=f"{q.high:.1%}")
    if q.kind == "scale" and q.mean is not None and q.low is not None and q.high is not None:
        return translate(lang, "report.fig_mean", m=f"{q.mean:.2f}", low=f"{q.low:.2f}",
                         high=f"{q.high:.2f}")
    if q.kind == "choice" and q.counts:
        return " · ".join(f"{label(value)} {count / q.n:.1%}" for value, count in q.counts)
    if q.kind == "number" and q.median is not None and q.q1 is not None and q.q3 is not None:
        return translate(lang, "report.fig_median", m=f"{q.median:g}", q1=f"{q.q1:g}",
                         q3=f"{q.q3:g}")
    if q.kind == "voice":
        return translate(lang, "report.fig_voice", n=q.n, pending=q.pending_review)
    return translate(lang, "report.suppressed")


def figure_texts(questions: tuple[QuestionStat, ...], lang: str,
                 catalog: QuestionCatalog | None) -> dict[str, str]:
    """`figure_text` of each question by its key, options named by the script's labels."""
    out: dict[str, str] = {}
    for q in questions:
        def label(value: str, q: QuestionStat = q) -> str:
            found = catalog.option_label(q.script_id, q.question_id, value, lang) \
                if catalog is not None else None
            return found or value
        out[q.key] = figure_text(q, lang, label)
    return out
