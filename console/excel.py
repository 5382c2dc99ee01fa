"""The monthly report as an Excel workbook a department head can file (openpyxl).

Every sheet opens with the same title block (hospital, report, department, month, when it
was generated in the hospital's local time, and by whom), then a header row that stays
frozen while scrolling and carries an autofilter. Words come from the console's catalogue
in the reader's language; shares are stored as fractions formatted `0.0%`, so Excel
computes with them; scale means keep two decimals. Native Excel charts: the response rate
over the trend months, and each question's share or mean.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from console.i18n import translate
from console.reports import MonthlyReport, QuestionStat

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PERCENT = "0.0%"
MEAN = "0.00"
_BOLD = Font(bold=True)
_TITLE = Font(bold=True, size=14)


def safe_text(value: str) -> str:
    """Text a spreadsheet will not run: a cell starting with = + - @, a tab or a CR would
    be read as a formula (OWASP CSV injection), so it gets a leading apostrophe."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


@dataclass(frozen=True, slots=True)
class Heading:
    """Who made the workbook, for whom, when: the title block on every sheet."""

    hospital: str
    locale: str  # "zh" or "en": the reader's language
    generated_at: str  # local time with its zone ("2026-12-07 10:05 UTC+8")
    generated_by: str  # the user's display name


class _Sheet:
    """One sheet: the title block, then a frozen, filtered table."""

    def __init__(self, ws: Worksheet, report: MonthlyReport, head: Heading, title_key: str,
                 columns: list[tuple[str, int]]) -> None:
        self.ws = ws
        t = head.locale
        dept = report.department_name if t == "zh" else (report.department_name_en
                                                          or report.department_name)
        ws.title = translate(t, title_key)[:31]
        ws.append([safe_text(f"{head.hospital} · {translate(t, 'report.title')}")])
        ws["A1"].font = _TITLE
        for key, value in (("dash.department", f"{report.department_code} {dept}"),
                           ("report.month", report.month),
                           ("report.generated_at", head.generated_at),
                           ("report.generated_by", head.generated_by)):
            ws.append([translate(t, key), safe_text(value)])
            ws.cell(ws.max_row, 1).font = _BOLD
        ws.append([])
        ws.append([translate(t, key) for key, _ in columns])
        self.header_row = ws.max_row
        for i, (_, width) in enumerate(columns, start=1):
            ws.cell(self.header_row, i).font = _BOLD
            ws.cell(self.header_row, i).alignment = Alignment(wrap_text=True)
            ws.column_dimensions[get_column_letter(i)].width = width
        ws.freeze_panes = f"A{self.header_row + 1}"  # a string: no cell is created
        self._columns = len(columns)

    def row(self, values: list[object], formats: dict[int, str] | None = None) -> None:
        self.ws.append(values)
        for col, fmt in (formats or {}).items():
            self.ws.cell(self.ws.max_row, col).number_format = fmt

    def close(self) -> None:
        last = get_column_letter(self._columns)
        bottom = max(self.ws.max_row, self.header_row)
        self.ws.auto_filter.ref = f"A{self.header_row}:{last}{bottom}"


_KIND_ORDER = {"yes_no": 0, "scale": 1, "choice": 2, "number": 3, "voice": 4}


def _value_format(q: QuestionStat) -> str:
    return PERCENT if q.kind == "yes_no" else MEAN


def report_workbook(report: MonthlyReport, names: dict[str, str], head: Heading,
                    texts: dict[str, str]) -> bytes:
    """The report as a workbook; `names` gives each question's wording and `texts` its
    figure in words (`console.report_text`), by its key."""
    t = head.locale
    wb = Workbook()
    f = report.figures
    summary = _Sheet(wb.active, report, head, "report.sheet_summary",
                     [("report.figure", 34), ("report.value", 16), ("report.definition", 70)])
    suppressed = translate(t, "report.suppressed")
    for key, value, fmt in (
            ("report.eligible", f.eligible, None),
            ("report.responded", f.responded, None),
            ("report.non_response", f.non_response, None),
            ("report.failed", f.failed, None),
            ("report.stopped", f.stopped, None),
            ("report.still_open", f.still_open, None),
            ("report.response_rate",
             suppressed if f.response_rate is None else f.response_rate, PERCENT)):
        summary.row([translate(t, key), value, translate(t, key + ".def")],
                    {2: fmt} if fmt and not isinstance(value, str) else None)
    summary.row([translate(t, "report.satisfaction"),
                 suppressed if f.satisfaction is None else f.satisfaction,
                 translate(t, "report.satisfaction.def")], {2: "0.0"})
    summary.row([translate(t, "report.min_cell"), report.min_cell,
                 translate(t, "report.note", n=report.min_cell)])
    summary.close()

    qs = _Sheet(wb.create_sheet(), report, head, "report.sheet_questions",
                [("call.question", 44), ("report.kind", 10), ("report.n", 10),
                 ("report.result", 16), ("report.ci_low", 12), ("report.ci_high", 12),
                 ("report.figure_text", 60)])
    first_q = qs.ws.max_row + 1
    # grouped by kind, so each chart reads one block of rows
    ordered = sorted(report.questions, key=lambda q: (_KIND_ORDER.get(q.kind, 9), q.key))
    for q in ordered:
        shown = q.n >= report.min_cell
        fmt = _value_format(q)
        qs.row([safe_text(names.get(q.key, q.question_id)), translate(t, f"qkind.{q.kind}"),
                q.n if shown else f"<{report.min_cell}",
                suppressed if q.suppressed else q.mean, q.low, q.high,
                safe_text(texts.get(q.key, ""))],
               {4: fmt, 5: fmt, 6: fmt})
    qs.close()
    _question_charts(qs.ws, ordered, first_q, t)

    tr = _Sheet(wb.create_sheet(), report, head, "report.trend",
                [("report.month", 12), ("report.eligible", 14), ("report.responded", 14),
                 ("report.response_rate", 14), ("report.satisfaction", 14)])
    first_m = tr.ws.max_row + 1
    for m in report.trend:
        tr.row([m.month, m.eligible, m.responded, m.response_rate, m.satisfaction],
               {4: PERCENT, 5: "0.0"})
    tr.close()
    chart = LineChart()
    chart.title = translate(t, "report.response_rate")
    chart.y_axis.number_format = PERCENT
    chart.y_axis.scaling.min = 0
    chart.y_axis.scaling.max = 1
    chart.add_data(Reference(tr.ws, min_col=4, min_row=first_m - 1, max_row=tr.ws.max_row),
                   titles_from_data=True)
    chart.set_categories(Reference(tr.ws, min_col=1, min_row=first_m, max_row=tr.ws.max_row))
    tr.ws.add_chart(chart, f"G{tr.header_row}")

    if report.ranking:
        rank = _Sheet(wb.create_sheet(), report, head, "report.ranking",
                      [("dash.department", 24), ("report.eligible", 12),
                       ("report.responded", 12), ("report.response_rate", 14)])
        for d in report.ranking:
            rank.row([safe_text(d.name if t == "zh" else (d.name_en or d.name)),
                      d.figures.eligible, d.figures.responded,
                      suppressed if d.figures.response_rate is None
                      else d.figures.response_rate], {4: PERCENT})
        rank.close()

    worst = _Sheet(wb.create_sheet(), report, head, "report.worst",
                   [("call.question", 44), ("report.result", 12), ("report.n", 10)])
    for q in report.worst:
        worst.row([safe_text(names.get(q.key, q.question_id)), q.mean, q.n], {2: MEAN})
    worst.close()
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _question_charts(ws: Worksheet, ordered: list[QuestionStat], first: int, t: str) -> None:
    """A bar chart per kind shown (yes/no shares, scale means) over its block of rows;
    suppressed cells hold text, which Excel leaves out of a chart."""
    anchor = 8
    for kind, title_key, fmt in (("yes_no", "report.share_yes", PERCENT),
                                 ("scale", "report.mean", MEAN)):
        rows = [first + i for i, q in enumerate(ordered) if q.kind == kind]
        if not rows:
            continue
        chart = BarChart()
        chart.type = "bar"
        chart.title = translate(t, title_key)
        chart.y_axis.number_format = fmt
        chart.legend = None
        lo, hi = min(rows), max(rows)
        chart.add_data(Reference(ws, min_col=4, min_row=lo, max_row=hi))
        chart.set_categories(Reference(ws, min_col=1, min_row=lo, max_row=hi))
        chart.height = max(6.0, 0.8 * len(rows))
        ws.add_chart(chart, f"H{anchor}")
        anchor += int(chart.height * 2) + 2
