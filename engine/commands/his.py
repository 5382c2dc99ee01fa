"""`followup his ...`: copy patients and visits from the hospital system (HIS).

Commands parse their options, call one function (`engine.his_service` to sync,
`hisync.reports` to read the quarantine and the run log), and print.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from core.enums import RejectReason
from engine import his_service
from engine.app import App
from engine.commands.verbatim import verbatim
from engine.context import pass_app
from hisync.reports import list_rejects, list_runs
from hisync.store_writer import Counts
from hisync.sync import SyncReport

# A bar only for runs long enough to wonder about; short runs print just the summary.
PROGRESS_MIN_ROWS = 20_000


def _out() -> Console:
    """Stdout; when it is not a terminal (a pipe, a log) tables get room instead of 80 cols."""
    console = Console()
    return console if console.is_terminal else Console(width=200)


def register(cli: click.Group) -> None:
    cli.add_command(his)


@click.group()
def his() -> None:
    """The hospital information system (HIS): copy patients and visits, see bad rows."""


class RichProgress:
    """A progress bar on the terminal (nothing when output is not a terminal)."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def start(self, entity: str, total: int | None) -> None:
        if not self._console.is_terminal or (total is not None and total < PROGRESS_MIN_ROWS):
            return
        self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                             MofNCompleteColumn(), TimeRemainingColumn(),
                             console=self._console, transient=True)
        self._bar.start()
        self._task = self._bar.add_task(f"syncing {entity}", total=total)

    def advance(self, rows: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, rows)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


@his.command()
@click.option("--source", metavar="URL_OR_FILE",
              help="Where the HIS data is: a database address such as "
                   "sqlite:///his.sqlite or postgresql://user:pw@host/his, a folder of CSV "
                   "files, or an Excel .xlsx file. Default: the his.source setting.")
@click.option("--mapping", metavar="FILE", type=click.Path(dir_okay=False),
              help="The mapping file (YAML) that says which HIS column is which. "
                   "Default: the his.mapping setting, else the synthetic HIS's mapping.")
@click.option("--full", is_flag=True,
              help="Read everything again, not just what changed since the last run. "
                   "Safe: rows already up to date are left alone.")
@pass_app
def sync(app: App, source: str | None, mapping: str | None, full: bool) -> None:
    """Copy new and changed patients and visits from the HIS.

    Only rows changed since the last run are read. Rows with a problem (a date that cannot
    be read, no valid phone number, an unknown department, ...) are not copied: they are
    kept aside with the reason, see `followup his rejects`. Safe to run again at any time,
    and safe to interrupt: the next run carries on where this one stopped.
    """
    console = Console(stderr=True)
    report = his_service.run_sync(app, source, mapping, full, progress=RichProgress(console))
    _print_report(report)


@his.command()
@click.option("--host", metavar="ADDRESS", help="Address to listen on. Default: his.hl7_host.")
@click.option("--port", type=click.IntRange(0, 65535),
              help="TCP port for MLLP. Default: his.hl7_port (2575).")
@pass_app
def listen(app: App, host: str | None, port: int | None) -> None:
    """Take HL7 v2 ADT messages (admissions, discharges, updates) over MLLP.

    Each message is answered with an ACK: AA when applied, AE naming the field that was
    wrong, AR for a message this receiver does not take. Patients and visits are written as
    `followup his sync` writes them; messages that cannot be applied are kept in the
    quarantine (`followup his rejects`). A message sent twice is applied once. Stops on
    Ctrl-C or SIGTERM.
    """
    console = Console(stderr=True)
    counts = asyncio.run(_listen(app, host, port, console))
    console.print(f"stopped: {counts.read} rows read, {counts.inserted} new, "
                  f"{counts.updated} updated, {counts.rejected} kept aside")


async def _listen(app: App, host: str | None, port: int | None, console: Console) -> Counts:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return await his_service.serve_hl7(
        app, host, port, stop,
        lambda bound: console.print(f"listening for HL7 ADT (MLLP) on port {bound}"))


def _print_report(report: SyncReport) -> None:
    table = Table(title=f"HIS sync run {report.run_id}: {report.status.value} "
                        f"in {report.duration_s:.1f} s", title_justify="left")
    for col in ("", "read", "new", "changed", "unchanged", "rejected"):
        table.add_column(col, justify="right" if col else "left")
    for entity, c in [*report.entities.items(), ("total", report.totals)]:
        table.add_row(entity, str(c.read), str(c.inserted), str(c.updated), str(c.unchanged),
                      str(c.rejected))
    console = _out()
    console.print(table)
    by_reason = report.totals.by_reason
    if by_reason:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(by_reason.items()))
        console.print(f"rejected rows by reason: {reasons}. "
                      "See them with: followup his rejects")
    if report.retries:
        console.print(f"the HIS was unavailable {report.retries} time(s); retried")


@his.command()
@click.option("--reason", type=click.Choice([r.value for r in RejectReason]),
              help="Only rows rejected for this reason.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True,
              help="How many rows to show (newest first).")
@click.option("--all", "include_resolved", is_flag=True,
              help="Also show rows that were fixed in the HIS since.")
@pass_app
def rejects(app: App, reason: str | None, limit: int, include_resolved: bool) -> None:
    """List HIS rows that were NOT copied, and why, so they can be fixed in the HIS.

    Each line names the HIS row (its id), the field that is wrong, the reason and what was
    found. After fixing the row in the HIS, the next `followup his sync` picks it up (if the
    HIS did not update the row's change time, run `followup his sync --full`); fixed rows
    then leave this list.
    """
    rows, total = list_rejects(app.db, RejectReason(reason) if reason else None, limit,
                               include_resolved)
    if not rows:
        click.echo("no rejected rows")
        return
    table = Table(title=f"{len(rows)} of {total} rejected HIS rows", title_justify="left")
    columns = ["HIS row", "kind", "field", "reason", "what is wrong"]
    for col in columns + (["fixed"] if include_resolved else []):
        table.add_column(col)
    for r in rows:
        cells = [verbatim(r.row_key) if r.row_key else "(no id)", r.entity,
                 verbatim(r.field), r.reason.value, verbatim(r.detail)]
        table.add_row(*cells, *(["yes" if r.resolved else ""] if include_resolved else []))
    _out().print(table)


@his.command()
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@pass_app
def runs(app: App, limit: int) -> None:
    """The log of sync runs: when, how many rows read, new, changed, rejected."""
    table = Table(title="HIS sync runs (newest first)", title_justify="left")
    for col in ("run", "started (UTC)", "status", "seconds", "read", "new", "changed",
                "unchanged", "rejected", "error"):
        table.add_column(col)
    for r in list_runs(app.db, limit):
        secs = f"{(r.finished_at - r.started_at).total_seconds():.1f}" if r.finished_at else ""
        table.add_row(str(r.id), r.started_at.strftime("%Y-%m-%d %H:%M:%S"), r.status.value,
                      secs, str(r.rows_read), str(r.inserted), str(r.updated), str(r.unchanged),
                      str(r.rejected), verbatim((r.error or "")[:60]))
    _out().print(table)


@his.command()
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The SQLite file to write (replaced if it exists).")
@click.option("--patients", type=click.IntRange(1, 10_000_000), default=300, show_default=True,
              help="How many patients (visits are about 1.5 per patient).")
@click.option("--seed", type=int, default=20260301, show_default=True,
              help="Same seed, same data.")
@click.option("--csv", "csv_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also export the tables as CSV files into this folder.")
def synth(out: Path, patients: int, seed: int, csv_dir: Path | None) -> None:
    """Make a practice HIS with realistic (invented) patients and visits, a few percent of
    them deliberately broken, to try `followup his sync` on. Writes a manifest of the broken
    rows beside the file."""
    manifest = his_service.synthesize(out, patients, seed, csv_dir)
    click.echo(f"wrote {out}: {manifest.patient_rows} patient rows, "
               f"{manifest.encounter_rows} visit rows, "
               f"{sum(b.rows for b in manifest.broken)} broken on purpose")
    click.echo(f"try: followup his sync --source sqlite:///{out.resolve()}")
