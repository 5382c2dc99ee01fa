"""Searches as files a spreadsheet opens safely, CSV or Excel: CSV as UTF-8 with a
byte-order mark (so Excel reads Chinese); times in the hospital's zone, headers and stored
values (outcomes, statuses, reasons, severities) in the reader's words, departments and
scripts by name, and no cell a spreadsheet would run as a formula (`excel.safe_text`).
Each export builds one `Table`; `as_csv` / `as_xlsx` encode it."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from console.calls import CallRow, TaskRow
from console.excel import safe_text
from console.i18n import translate
from console.periods import local_time
from console.ticket_lists import TicketRow

ScriptName = Callable[[str], str]  # a script id -> its title in the reader's language

CALL_COLUMNS = ("calls.attempt_id", "calls.when", "dash.department", "calls.patient",
                "calls.mrn", "calls.script", "calls.attempt", "calls.dial", "calls.outcome")
TASK_COLUMNS = ("export.task_id", "patient.due", "dash.department", "calls.patient",
                "calls.mrn", "calls.script", "patient.status", "calls.attempt")
TICKET_COLUMNS = ("export.ticket_id", "calls.when", "dash.department", "calls.patient",
                  "export.phone", "work.reason", "work.severity", "patient.status", "work.assignee",
                  "work.summary", "work.notes")


@dataclass(frozen=True, slots=True)
class Table:
    header: list[str]
    rows: list[list[object]]


def _table(lang: str, header: tuple[str, ...], rows: Iterable[list[object]]) -> Table:
    return Table([translate(lang, key) for key in header], list(rows))


def as_csv(table: Table) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(table.header)
    writer.writerows(table.rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def as_xlsx(table: Table, title: str) -> bytes:
    """One sheet: the header row bold, frozen and filtered, columns sized to their text."""
    wb = Workbook()
    ws = wb.active
    ws.title = title[:31]
    ws.append(table.header)
    for row in table.rows:
        ws.append(row)
    for i, name in enumerate(table.header, start=1):
        ws.cell(1, i).font = Font(bold=True)
        longest = max([len(str(name)), *(len(str(r[i - 1])) for r in table.rows[:200])])
        ws.column_dimensions[get_column_letter(i)].width = min(60, max(8, longest * 1.6))
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(table.header))}{max(1, ws.max_row)}"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _dept(lang: str, row: CallRow | TaskRow | TicketRow) -> str:
    return safe_text((row.department_name if lang == "zh" else
                      row.department_name_en or row.department_name) or row.department)


def _word(lang: str, prefix: str, value: str) -> str:
    return translate(lang, f"{prefix}.{value}") if value else ""


def calls_table(rows: tuple[CallRow, ...], tz: str, lang: str, script: ScriptName) -> Table:
    return _table(lang, CALL_COLUMNS, (
        [r.attempt_id, local_time(r.created_at, tz, seconds=True), _dept(lang, r),
         safe_text(r.patient_name), safe_text(r.mrn), safe_text(script(r.script_id)),
         r.number, _word(lang, "dial", r.dial_outcome),
         _word(lang, "script", r.script_outcome)] for r in rows))


def tasks_table(rows: tuple[TaskRow, ...], lang: str, script: ScriptName) -> Table:
    return _table(lang, TASK_COLUMNS, (
        [r.task_id, r.due_date.isoformat(), _dept(lang, r), safe_text(r.patient_name),
         safe_text(r.mrn), safe_text(script(r.script_id)), _word(lang, "task", r.status),
         f"{r.attempts}/{r.max_attempts}"] for r in rows))


def tickets_table(rows: list[TicketRow], tz: str, lang: str) -> Table:
    return _table(lang, TICKET_COLUMNS, (
        [r.id, local_time(r.created_at, tz, seconds=True), _dept(lang, r),
         safe_text(r.patient_name), safe_text(r.phone), _word(lang, "reason", r.reason),
         _word(lang, "sev", r.severity), _word(lang, "tstatus", r.status),
         safe_text(r.assignee), safe_text(r.summary), safe_text(r.notes)] for r in rows))
