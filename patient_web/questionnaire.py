"""The patient's questionnaire as a service: the identity check, one step of the script,
the opt-out. Views call one method each; every store write happens here.

- `verify(token, year)`: the birth year, before any health question. A wrong year counts in
  the link's row (`failures`, under a row lock, so it survives restarts and two tabs);
  `max_failures` wrong years lock the link and raise an `identity_failed` ticket for the
  task's department. The first right year writes the web session's attempt (backend
  `web`, answered, not dialled: the reports count it like an answered call, the dialer's
  contact budget does not) and links it from the link row.
- `step(token, given)`: runs the task's scripts through the interpreter over a
  `WebChannel` (see there why it replays), then writes in ONE transaction the answers the
  run gave (source `web`), the tickets their red flags raised (the same `TicketRequest`s a
  call raises, written by `ivr.result_store` as the dialer writes them), and, when the
  last question is answered, the attempt's outcome, the task closed as an answered call
  closes it (with the tasks merged into it) and the link used. A second submit of the
  same answer (a double tap, a reload) stores nothing twice and raises no second ticket.
- `opt_out(token)`: the patient's `opt_out_sms`, audited.

Raises `core.errors.StoreError` (via the store) and `core.errors.NotFound` for a script
version that is not loaded.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.audit import AuditLog
from core.clock import Clock
from core.enums import (
    AnswerSource,
    AttemptStatus,
    DialOutcome,
    ScriptOutcome,
    Severity,
    TaskStatus,
    TicketReason,
    TicketStatus,
)
from core.store.db import Database
from core.store.models import Answer as AnswerRow
from core.store.models import (
    CallAttempt,
    Department,
    Encounter,
    FollowupTask,
    Patient,
    Ticket,
)
from core.ticket_texts import TicketText, ticket_text
from core.tickets import DEFAULT_RESPONSE_TIMES, ResponseTimes
from ivr.answer_reading import TRANSCRIBING
from ivr.call_context import CallContext
from ivr.interpreter import ScriptInterpreter
from ivr.messages import patient_title
from ivr.prompts import PromptContext
from ivr.result_store import add_ticket, answer_row, close_task
from ivr.results import Answer, ScriptResult, TicketRequest
from ivr.script_library import ScriptLibrary
from ivr.script_model import Question, Script
from patient_web.links import ANSWERABLE, FoundLink, LinkState, find_link, link_state
from patient_web.text_prompts import TextPrompts
from patient_web.texts import ui_language
from patient_web.web_channel import Asked, Shown, TypedWords, WebChannel, WebInput

BACKEND = "web"
ACTOR = "patient:web"
# how a "not reached" ticket is closed when the patient answers on the web (the agent's
# own disposition for it, console.forms.Disposition.REACHED_COMPLETED_SURVEY)
REACHED_BY_WEB = "reached_completed_survey"
WEB_NOTE = "患者已通过短信链接完成网页问卷 (the patient answered the web questionnaire)"
_DONE = (ScriptOutcome.COMPLETED, ScriptOutcome.ESCALATED)


@dataclass(frozen=True)
class HospitalFacts:
    """What the prompts may say about the hospital (in its own language and in English)."""

    name: str
    name_en: str
    language: str  # the locale of `name` and the departments' `name`; tickets' language
    emergency_number: str
    callback_number: str = ""


class Identity(enum.StrEnum):
    VERIFIED = "verified"
    WRONG = "wrong"
    LOCKED = "locked"
    REFUSED = "refused"  # the link is not open (see `state`)


@dataclass(frozen=True)
class IdentityResult:
    outcome: Identity
    state: LinkState
    language: str
    tries_left: int = 0


@dataclass(frozen=True)
class LinkView:
    """A link as a page sees it before anything runs."""

    state: LinkState
    language: str
    verified: bool = False


@dataclass(frozen=True)
class Step:
    """What one run of the questionnaire leaves for the page."""

    state: LinkState
    language: str
    needs_identity: bool = False
    shown: tuple[Shown, ...] = ()
    asked: Asked | None = None
    script: Script | None = None  # the asked question's script
    question: Question | None = None
    finished: bool = False


@dataclass(frozen=True)
class _Snapshot:
    link_id: int
    attempt_id: int
    task_id: int
    language: str
    birth_year: int | None
    scripts: tuple[Script, ...]
    context: CallContext


class WebAnswerSink:
    """Keeps the run's answers (the latest per question) for the step's one transaction,
    as the web gave them: source `web`, no clip, no offset in a recording."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], Answer] = {}

    async def save(self, answer: Answer) -> None:
        source = AnswerSource.WEB if answer.source is not AnswerSource.NONE else answer.source
        note = None if answer.note == TRANSCRIBING else answer.note
        self.answers[(answer.script_id, answer.question_id)] = replace(
            answer, source=source, audio=None, offset_ms=None, note=note,
            needs_review=False if source is AnswerSource.WEB else answer.needs_review)


def _earlier(row: AnswerRow) -> Answer:
    """A stored answer as the interpreter reads earlier ones (a call's clip as a marker:
    only whether there is one matters here)."""
    clip = (Path("recording", str(row.recording_id)) if row.recording_id is not None
            else Path(row.clip_spool) if row.clip_spool else None)
    return Answer(script_id=row.script_id, script_version=row.script_version,
                  question_id=row.question_id, kind=row.kind, source=row.source,
                  value=row.value, transcript=row.transcript, confidence=row.confidence,
                  needs_review=row.needs_review, note=row.note, red_flag=row.red_flag,
                  audio=clip, offset_ms=row.offset_ms)


class Questionnaire:
    """The web questionnaire's service; built once by the composition root."""

    def __init__(self, db: Database, clock: Clock, audit: AuditLog, library: ScriptLibrary,
                 hospital: HospitalFacts, key: bytes, max_failures: int = 3,
                 response_times: ResponseTimes = DEFAULT_RESPONSE_TIMES) -> None:
        self.db = db
        self._clock = clock
        self._audit = audit
        self._library = library
        self._hospital = hospital
        self._key = key
        self._max_failures = max_failures
        self._response_times = response_times
        self._prompts = TextPrompts()

    # -- the link ----------------------------------------------------------------------

    @staticmethod
    def _language(found: FoundLink | None) -> str:
        return ui_language(found.patient.language if found is not None else None)

    def view(self, token: str) -> LinkView:
        """The link's state, the patient's page language and whether identity passed."""
        with self.db.session() as s:
            found = find_link(s, token, self._key)
            return LinkView(link_state(found, self._clock.now()), self._language(found),
                            found is not None and found.link.verified_at is not None)

    # -- identity ----------------------------------------------------------------------

    def verify(self, token: str, year: int | None) -> IdentityResult:
        """Check the birth year (None: not a year at all, which counts as wrong)."""
        now = self._clock.now()
        with self.db.session() as s:
            found = find_link(s, token, self._key, for_update=True)
            state = link_state(found, now)
            language = self._language(found)
            if found is None or state is not LinkState.OPEN:
                return IdentityResult(Identity.REFUSED, state, language)
            link, task, patient = found.link, found.task, found.patient
            born = patient.birth_date.year if patient.birth_date else None
            if born is not None and year == born:
                link.verified_at = link.verified_at or now
                if link.attempt_id is None:
                    link.attempt_id = self._new_attempt(s, task, patient, now)
                return IdentityResult(Identity.VERIFIED, state, language)
            link.failures += 1
            if link.failures < self._max_failures:
                return IdentityResult(Identity.WRONG, state, language,
                                      self._max_failures - link.failures)
            link.locked_at = now
            staff = self._hospital.language
            summary = (ticket_text(staff, TicketText.IDENTITY_NO_BIRTH_YEAR) if born is None
                       else ticket_text(staff, TicketText.IDENTITY_FAILED,
                                        tries=self._max_failures))
            add_ticket(s, task, link.attempt_id, TicketRequest(
                TicketReason.IDENTITY_FAILED, Severity.LOW, summary, task.script_id),
                now, self._response_times)
            return IdentityResult(Identity.LOCKED, LinkState.LOCKED, language)

    @staticmethod
    def _new_attempt(s: Session, task: FollowupTask, patient: Patient, now: dt.datetime) -> int:
        number = s.execute(select(func.count()).select_from(CallAttempt).where(
            CallAttempt.task_id == task.id)).scalar_one() + 1
        # Ended from the start (partial until the last answer): a web session is never a
        # live call, so it neither blocks the patient's next call nor looks like a call a
        # dead dialer left behind.
        attempt = CallAttempt(task_id=task.id, patient_id=patient.id,
                              department_id=task.department_id, number=number,
                              status=AttemptStatus.ENDED, backend=BACKEND,
                              phone=patient.phone or "", dialled=False,
                              dial_outcome=DialOutcome.ANSWERED,
                              script_outcome=ScriptOutcome.PARTIAL, created_at=now,
                              answered_at=now, ended_at=now)
        s.add(attempt)
        s.flush()
        return attempt.id

    # -- the questions -----------------------------------------------------------------

    async def step(self, token: str, given: WebInput | None) -> Step:
        """Run the questionnaire up to its next question, taking `given` on the way."""
        loaded = await self.db.call(self._load, token)
        if not isinstance(loaded, _Snapshot):
            return loaded
        words = TypedWords()
        channel = WebChannel(loaded.birth_year, given, words)
        sink = WebAnswerSink()
        interpreter = ScriptInterpreter(self._prompts, sink, words, min_confidence=0.0)
        results = await interpreter.run_many(list(loaded.scripts), channel, loaded.context)
        finished = channel.asked is None and all(r.outcome in _DONE for r in results)
        state = await self.db.call(self._save, token, loaded, sink, results, finished)
        if state is not LinkState.OPEN:
            return Step(state, loaded.language)
        script = question = None
        if channel.asked is not None:
            script = next(s for s in loaded.scripts if s.id == channel.asked.script_id)
            question = script.question(channel.asked.question_id)
        return Step(LinkState.OPEN, loaded.language, shown=tuple(channel.shown),
                    asked=channel.asked, script=script, question=question,
                    finished=finished)

    def _load(self, token: str) -> _Snapshot | Step:
        now = self._clock.now()
        with self.db.session() as s:
            found = find_link(s, token, self._key)
            state = link_state(found, now)
            language = self._language(found)
            if found is None or state is not LinkState.OPEN:
                return Step(state, language)
            link, task, patient = found.link, found.task, found.patient
            if link.verified_at is None or link.attempt_id is None:
                return Step(state, language, needs_identity=True)
            scripts = tuple(self._library.pick(sid, ver, patient.language)
                            for sid, ver in self._versions(s, task))
            locale = scripts[0].locale
            native = locale == self._hospital.language
            names = s.execute(select(Department.name, Department.name_en, Encounter.discharge_at)
                              .select_from(Department)
                              .outerjoin(Encounter, Encounter.id == task.encounter_id)
                              .where(Department.id == task.department_id)).first()
            name, name_en, discharge = names if names is not None else ("", None, None)
            department = name if native else (name_en or name)
            visit = ({"discharge_date": discharge.date().isoformat()} if discharge else {})
            earlier = [_earlier(r) for r in s.execute(
                select(AnswerRow).where(AnswerRow.task_id == task.id)
                .order_by(AnswerRow.id)).scalars()]
            h = self._hospital
            prompt = PromptContext(
                patient_name=patient.name, patient_title=patient_title(locale, patient.sex),
                hospital=h.name if native else h.name_en, department=department,
                emergency_number=h.emergency_number, callback_number=h.callback_number,
                visit=visit)
            context = CallContext(
                prompt=prompt, birth_year=patient.birth_date.year if patient.birth_date
                else None, staffed_hours=False,
                earlier_answers=tuple(a for a in earlier if a.answered),
                staff_language=h.language)
            return _Snapshot(link.id, link.attempt_id, task.id, language,
                             context.birth_year, scripts, context)

    @staticmethod
    def _versions(s: Session, task: FollowupTask) -> list[tuple[str, int]]:
        """The task's scripts in call order, each at the version its own task planned
        (merged tasks keep theirs), as the dialer asks them."""
        versions = {task.script_id: task.script_version}
        order = [str(x) for x in task.call_scripts] if task.call_scripts else [task.script_id]
        if len(order) > 1:
            for script_id, version in s.execute(
                    select(FollowupTask.script_id, FollowupTask.script_version)
                    .where(FollowupTask.merged_into_id == task.id)):
                versions.setdefault(script_id, version)
        return [(sid, versions.get(sid, task.script_version)) for sid in order]

    def _save(self, token: str, snap: _Snapshot, sink: WebAnswerSink,
              results: list[ScriptResult], finished: bool) -> LinkState:
        now = self._clock.now()
        with self.db.session() as s:
            found = find_link(s, token, self._key, for_update=True)
            state = link_state(found, now)
            if found is None or state is not LinkState.OPEN:
                return state  # used or locked meanwhile (another tab): nothing is written
            link, task = found.link, found.task
            attempt = s.get(CallAttempt, snap.attempt_id)
            assert attempt is not None
            rows = list(s.execute(select(AnswerRow).where(
                AnswerRow.attempt_id == attempt.id)).scalars())
            kept = {(r.script_id, r.question_id) for r in rows}
            new = {k: a for k, a in sink.answers.items() if k not in kept}
            for answer in new.values():
                s.add(answer_row(answer, attempt_id=attempt.id, task_id=task.id, now=now))
            for result in results:
                for req in result.tickets:
                    if req.question_id is None or (req.script_id, req.question_id) in new:
                        add_ticket(s, task, attempt.id, req, now, self._response_times)
            if new:
                attempt.ended_at = now
            if finished:
                # the run replays only the last answer: a red flag an earlier page raised is
                # on its stored answer, and escalates the session like a call's
                flagged = any(r.red_flag is not None for r in rows) or any(
                    a.red_flag is not None for a in new.values())
                outcome = (ScriptOutcome.ESCALATED if flagged or any(
                    r.outcome is ScriptOutcome.ESCALATED for r in results)
                           else ScriptOutcome.COMPLETED)
                attempt.script_outcome = outcome
                attempt.ended_at = now
                link.used_at = now
                if task.status in ANSWERABLE:
                    # like an answered call that finished its script (dialer.retry_policy)
                    close_task(s, task, TaskStatus.DONE, None, now, outcome=outcome.value)
                self._reached(s, task, now)
            return LinkState.OPEN

    def _reached(self, s: Session, task: FollowupTask, now: dt.datetime) -> None:
        """The "not reached after the last attempt" tickets of `task` are answered: the
        patient finished the questionnaire on the web. Closed (nobody need call now),
        with the disposition an agent would give and a note, audited."""
        for ticket in s.execute(select(Ticket).where(
                Ticket.task_id == task.id, Ticket.reason == TicketReason.ATTEMPTS_EXHAUSTED,
                Ticket.status != TicketStatus.CLOSED)).scalars():
            ticket.status = TicketStatus.CLOSED
            ticket.disposition = REACHED_BY_WEB
            ticket.notes = ((ticket.notes + "\n") if ticket.notes else "") + WEB_NOTE
            ticket.closed_at = now
            self._audit.append(s, ACTOR, "ticket.close", "ticket", ticket.id,
                               {"disposition": REACHED_BY_WEB, "by": "web questionnaire"})

    # -- opting out --------------------------------------------------------------------

    def opt_out(self, token: str) -> LinkView:
        """No more messages for this patient (`opt_out_sms`), audited. Any link we issued
        may do it, even a used or expired one; an unknown token may not."""
        with self.db.session() as s:
            found = find_link(s, token, self._key, for_update=True)
            language = self._language(found)
            if found is None:
                return LinkView(LinkState.UNKNOWN, language)
            link, patient = found.link, found.patient
            was = patient.opt_out_sms
            patient.opt_out_sms = True
            self._audit.append(s, ACTOR, "patient.opt_out_sms", "patient", patient.id,
                               {"web_link": link.id, "already": was})
            return LinkView(link_state(found, self._clock.now()), language)
