"""`followup calls --patient ID` and `followup calls show ATTEMPT_ID`: a patient's calls and
one call in full, read as the console reads them (`console.call_history`, `console.calls`).

Reading a patient's calls is audited like a console view (`patient.view`, `call.view`), as
`cli:<login name>`. Times are printed in the hospital's time zone.
"""

from __future__ import annotations

import datetime as dt

import click

from console.access import Permission, Principal
from console.call_history import PatientCalls, patient_calls
from console.calls import AnswerView, CallDetail, call_detail
from core.calling_window import zone
from core.enums import AnswerSource, QuestionKind, Role, TicketReason, TicketStatus
from core.store.models import Patient, Ticket
from engine.app import App
from engine.commands.verbatim import verbatim
from engine.context import cli_actor, pass_app
from followup_rules.task_listing import DIAL_WORDS, outcome_words

TICKET_WORDS = {
    TicketReason.ATTEMPTS_EXHAUSTED: "not reached after every attempt",
    TicketReason.RED_FLAG: "red flag", TicketReason.LOW_CONFIDENCE: "voice answer unclear",
    TicketReason.IDENTITY_FAILED: "identity not confirmed",
    TicketReason.ASKED_FOR_PERSON: "asked for a person",
    TicketReason.INVALID_NUMBER: "invalid number",
    TicketReason.CALLING_PAUSED: "calling paused after failed calls"}
TICKET_STATUS_WORDS = {TicketStatus.OPEN: "open", TicketStatus.CLAIMED: "being worked",
                       TicketStatus.CLOSED: "closed"}


def register(cli: click.Group) -> None:
    cli.add_command(calls)


def _reader(actor: str) -> Principal:
    """The command line reads calls hospital-wide (it runs where the store's keys are)."""
    return Principal(0, actor, actor, Role.ADMIN, frozenset({Role.ADMIN}),
                     {Permission.CALLS: None}, None)


def _clean(text: str | None) -> str:
    return verbatim(text).plain


class _Clock:
    """Stored (UTC) times as the hospital reads them."""

    def __init__(self, timezone: str) -> None:
        self.name = timezone
        self._tz = zone(timezone)

    def __call__(self, value: dt.datetime | None, seconds: bool = False) -> str:
        if value is None:
            return ""
        return value.astimezone(self._tz).strftime(
            "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _outcome(c: CallDetail) -> str:
    a = c.attempt
    return outcome_words(a.status, a.dial_outcome, a.script_outcome)


def _answer_short(v: AnswerView) -> str:
    if v.source == AnswerSource.NONE:
        said = "(no answer)"
    elif v.kind == QuestionKind.VOICE:
        said = f'(voice) "{_clean(v.transcript)}"'
    else:
        said = _clean(v.value)
    flag = f" [red flag: {v.red_flag}]" if v.red_flag else ""
    return f"{v.question_id} = {said}{flag}"


def _ticket(t: Ticket) -> str:
    severity = f", {t.severity.value}" if t.severity is not None else ""
    return (f"ticket {t.id}: {TICKET_WORDS[t.reason]}{severity}, "
            f"{TICKET_STATUS_WORDS[t.status]}")


def _recording(c: CallDetail) -> str:
    r = c.recording
    if r is None:
        return "none"
    flagged = f" (integrity check failed: {_clean(c.recording_flagged)})" \
        if c.recording_flagged else ""
    return f"{r.id} {_clean(r.path)} sha256 {r.sha256}{flagged}"


def _patient_line(p: Patient) -> str:
    return f"{_clean(p.name)}  HIS {_clean(p.his_id)}  MRN {_clean(p.mrn)}  " \
        f"phone {p.phone or '-'}"


@click.group(invoke_without_command=True)
@click.option("--patient", "ref", metavar="ID", help="The patient's HIS id or MRN.")
@click.pass_context
def calls(ctx: click.Context, ref: str | None) -> None:
    """A patient's calls, or one call in full.

    \b
    Examples:
      followup calls --patient 100234     every call to patient 100234
      followup calls show 5821             call 5821: answers, recording, tickets
    """
    if ctx.invoked_subcommand is not None:
        if ref is not None:
            raise click.UsageError("--patient lists a patient's calls: not with `show`")
        return
    if ref is None:
        raise click.UsageError("give --patient ID, or `show ATTEMPT_ID`")
    ctx.invoke(_list_patient, ref=ref)


@pass_app
def _list_patient(app: App, ref: str) -> None:
    actor = cli_actor()
    with app.db.session() as s:
        found = patient_calls(s, _reader(actor), ref)
        app.audit.append(s, actor, "patient.view", "patient", found.patient.id,
                         {"via": "cli", "calls": len(found.calls)})
    _print_patient(found, _Clock(app.settings.hospital.default_timezone))


def _print_patient(found: PatientCalls, local: _Clock) -> None:
    click.echo(_patient_line(found.patient))
    if not found.calls:
        click.echo("no calls")
        return
    click.echo(f"{len(found.calls)} calls (times {local.name}):")
    for c in found.calls:
        click.echo(f"call {c.attempt.id}  {local(c.attempt.created_at)}  "
                   f"{_clean(c.department.code)}  {_clean(c.task.script_id)}  "
                   f"attempt {c.attempt.number}/{c.task.max_attempts}  {_outcome(c)}")
        if c.answers:
            click.echo("  answers: " + "; ".join(_answer_short(v) for v in c.answers))
        if c.recording is not None:
            click.echo(f"  recording: {_recording(c)}")
        for t in c.tickets:
            click.echo(f"  {_ticket(t)}")


@calls.command("show")
@click.argument("attempt_id", metavar="ATTEMPT_ID", type=click.IntRange(1, 2**53))
@pass_app
def show(app: App, attempt_id: int) -> None:
    """One call in full: the patient, the outcome, every answer (question id, value,
    the transcript of a voice answer), red flags, the recording and the tickets."""
    actor = cli_actor()
    with app.db.session() as s:
        c = call_detail(s, _reader(actor), attempt_id)
        app.audit.append(s, actor, "call.view", "call", attempt_id, {"via": "cli"})
    _print_call(c, _Clock(app.settings.hospital.default_timezone))


def _print_call(c: CallDetail, local: _Clock) -> None:
    a = c.attempt
    dial = f" (dial: {DIAL_WORDS[a.dial_outcome]})" if a.dial_outcome and a.script_outcome \
        else ""
    rows = [
        ("call", f"{a.id}, attempt {a.number}/{c.task.max_attempts} of follow-up {c.task.id}"),
        ("patient", _patient_line(c.patient)),
        ("department", f"{_clean(c.department.code)} {_clean(c.department.name)}"),
        ("script", f"{_clean(c.task.script_id)} v{c.task.script_version}"),
        ("number", a.phone),
        ("outcome", _outcome(c) + dial),
        (f"placed ({local.name})", local(a.created_at, seconds=True)),
        ("answered", local(a.answered_at, seconds=True) or "-"),
        ("ended", local(a.ended_at, seconds=True) or "-"),
        ("talk time", f"{a.talk_time_s} s" if a.talk_time_s is not None else "-"),
        ("recording", _recording(c)),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key.ljust(width)}  {value}")
    click.echo("answers:" if c.answers else "answers: none")
    for v in c.answers:
        said = "(no answer)" if v.source == AnswerSource.NONE else _clean(v.value) or "-"
        click.echo(f"  {_clean(v.script_id)}/{_clean(v.question_id)}  {said}  "
                   f"({v.kind}, {v.source})")
        if v.transcript:
            conf = f", confidence {v.confidence:.2f}" if v.confidence is not None else ""
            review = ", needs review" if v.needs_review else ""
            click.echo(f'    transcript: "{_clean(v.transcript)}"{conf}{review}')
        if v.clip_id is not None:
            click.echo(f"    voice clip: recording {v.clip_id}")
    flags = [v for v in c.answers if v.red_flag]
    click.echo("red flags: " + ("; ".join(
        f"{_clean(v.question_id)} ({v.red_flag})" for v in flags)
        if flags else "none"))
    click.echo("tickets:" if c.tickets else "tickets: none")
    for t in c.tickets:
        summary = f': "{_clean(t.summary)}"' if t.summary else ""
        click.echo(f"  {_ticket(t)}{summary}")
