"""Searches as CSV files a spreadsheet opens safely: UTF-8 with a byte-order mark (so Excel
reads Chinese), times in the hospital's zone, headers and stored values (outcomes,
statuses, reasons, severities) in the reader's words, scripts by their title, and no cell a
spreadsheet would run as a formula (`excel.safe_text`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable

from console.calls import CallRow, TaskRow
from console.excel import safe_text
from console.i18n import translate
from console.periods import local_time
from console.worklist import TicketRow

ScriptName = Callable[[str], str]  # a script id -> its title in the reader's language

CALL_COLUMNS = ("calls.attempt_id", "calls.when", "dash.department", "calls.patient",
                "calls.mrn", "calls.script", "calls.attempt", "calls.dial", "calls.outcome")
TASK_COLUMNS = ("export.task_id", "patient.due", "dash.department", "calls.patient",
                "calls.mrn", "calls.script", "patient.status", "calls.attempt")
TICKET_COLUMNS = ("export.ticket_id", "calls.when", "dash.department", "calls.patient",
                  "export.phone", "work.reason", "work.severity", "patient.status", "work.assignee",
                  "work.summary", "work.notes")


def _csv(lang: str, header: tuple[str, ...], rows: Iterable[list[object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([translate(lang, key) for key in header])
    writer.writerows(rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _word(lang: str, prefix: str, value: str) -> str:
    return translate(lang, f"{prefix}.{value}") if value else ""


def calls_csv(rows: tuple[CallRow, ...], tz: str, lang: str, script: ScriptName) -> bytes:
    return _csv(lang, CALL_COLUMNS, (
        [r.attempt_id, local_time(r.created_at, tz, seconds=True), safe_text(r.department),
         safe_text(r.patient_name), safe_text(r.mrn), safe_text(script(r.script_id)),
         r.number, _word(lang, "dial", r.dial_outcome),
         _word(lang, "script", r.script_outcome)] for r in rows))


def tasks_csv(rows: tuple[TaskRow, ...], lang: str, script: ScriptName) -> bytes:
    return _csv(lang, TASK_COLUMNS, (
        [r.task_id, r.due_date.isoformat(), safe_text(r.department), safe_text(r.patient_name),
         safe_text(r.mrn), safe_text(script(r.script_id)), _word(lang, "task", r.status),
         f"{r.attempts}/{r.max_attempts}"] for r in rows))


def tickets_csv(rows: list[TicketRow], tz: str, lang: str) -> bytes:
    return _csv(lang, TICKET_COLUMNS, (
        [r.id, local_time(r.created_at, tz, seconds=True), safe_text(r.department),
         safe_text(r.patient_name), safe_text(r.phone), _word(lang, "reason", r.reason),
         _word(lang, "sev", r.severity), _word(lang, "tstatus", r.status),
         safe_text(r.assignee), safe_text(r.summary), safe_text(r.notes)] for r in rows))
