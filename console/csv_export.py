"""Searches as CSV files a spreadsheet opens safely: UTF-8 with a byte-order mark (so Excel
reads Chinese), times in the hospital's zone, headers in the reader's language, and no cell
a spreadsheet would run as a formula (`excel.safe_text`)."""

from __future__ import annotations

import csv
import io

from console.calls import CallRow
from console.excel import safe_text
from console.i18n import translate
from console.periods import local_time

CALL_COLUMNS = ("calls.attempt_id", "calls.when", "dash.department", "calls.patient",
                "calls.mrn", "calls.script", "calls.attempt", "calls.dial", "calls.outcome")


def calls_csv(rows: tuple[CallRow, ...], tz: str, lang: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([translate(lang, key) for key in CALL_COLUMNS])
    for r in rows:
        writer.writerow([r.attempt_id, local_time(r.created_at, tz, seconds=True),
                         safe_text(r.department), safe_text(r.patient_name), safe_text(r.mrn),
                         safe_text(r.script_id), r.number, r.dial_outcome, r.script_outcome])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
