"""The monthly report as an Excel workbook (openpyxl)."""

from __future__ import annotations

import io

from openpyxl import Workbook
from openpyxl.styles import Font

from console.reports import MonthlyReport

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_text(value: str) -> str:
    """Text a spreadsheet will not run: a cell starting with = + - @, a tab or a CR would
    be read as a formula (OWASP CSV injection), so it gets a leading apostrophe."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def report_workbook(report: MonthlyReport, names: dict[str, str] | None = None) -> bytes:
    """The report as a workbook; `names` gives each question's wording by its key."""
    names = names or {}
    wb = Workbook()
    ws = wb.active
    ws.title = "Summary"
    bold = Font(bold=True)
    f = report.figures
    rows: list[tuple[str, object]] = [
        ("Department", safe_text(f"{report.department_code} {report.department_name}")),
        ("Month", report.month),
        ("Eligible follow-ups", f.eligible),
        ("Responded", f.responded),
        ("Non-response", f.non_response),
        ("  failed after the last attempt", f.failed),
        ("  refused / opted out / invalid number", f.stopped),
        ("  still open", f.still_open),
        ("Response rate", "suppressed" if f.response_rate is None else round(f.response_rate, 4)),
        ("Cells with fewer answers than this are suppressed", report.min_cell),
    ]
    for label, value in rows:
        ws.append([label, value])
    for cell in ws["A"]:
        cell.font = bold
    ws.column_dimensions["A"].width = 48
    ws.column_dimensions["B"].width = 28

    q = wb.create_sheet("Questions")
    q.append(["Script", "Question", "Wording", "Kind", "Answers", "Mean / share yes", "CI low",
              "CI high"])
    for cell in q[1]:
        cell.font = bold
    for s in report.questions:
        q.append([safe_text(s.script_id), safe_text(s.question_id),
                  safe_text(names.get(s.key, "")), s.kind,
                  s.n if s.n >= report.min_cell else f"<{report.min_cell}",
                  "suppressed" if s.mean is None else round(s.mean, 3),
                  None if s.low is None else round(s.low, 3),
                  None if s.high is None else round(s.high, 3)])

    t = wb.create_sheet("Trend")
    t.append(["Month", "Eligible", "Responded", "Response rate"])
    for cell in t[1]:
        cell.font = bold
    for m in report.trend:
        t.append([m.month, m.eligible, m.responded,
                  None if m.response_rate is None else round(m.response_rate, 4)])

    w = wb.create_sheet("Worst items")
    w.append(["Script", "Question", "Wording", "Mean", "Answers"])
    for s in report.worst:
        w.append([safe_text(s.script_id), safe_text(s.question_id), safe_text(names.get(s.key, "")),
                  None if s.mean is None else round(s.mean, 3), s.n])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
