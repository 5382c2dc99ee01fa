"""What runs on an answered call: load the call's context, run its scripts, store answers.

Both telephony backends (Asterisk's FastAGI session and the simulator) call an
`IvrCallHandler` with the attempt id and a `Channel`; it knows the store, the scripts and
the IVR, and nothing about how the call was placed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import select

from core.calling_window import parse_calling_window
from core.clock import Clock
from core.enums import ScriptOutcome, Sex
from core.errors import NotFound
from core.store.db import Database
from core.store.models import CallAttempt, Department, Encounter, FollowupTask, Patient
from dialer.attempt_log import AttemptLog
from dialer.claims import call_script_versions
from ivr.call_context import CallContext
from ivr.channel import Channel
from ivr.interpreter import ScriptInterpreter
from ivr.prompt_maker import PromptSource
from ivr.prompts import PromptContext
from ivr.results import Answer, ScriptResult, TicketRequest
from ivr.script_model import Script
from ivr.speech import SpeechRecognizer

log = logging.getLogger(__name__)

# The order in which merged scripts' outcomes decide the call's outcome.
_PRECEDENCE = (ScriptOutcome.OPTED_OUT, ScriptOutcome.IDENTITY_FAILED, ScriptOutcome.REFUSED,
               ScriptOutcome.TRANSFERRED, ScriptOutcome.PARTIAL, ScriptOutcome.ESCALATED,
               ScriptOutcome.COMPLETED)


@dataclass(frozen=True)
class CallIvrResult:
    """The whole call's IVR result (one or more merged scripts)."""

    outcome: ScriptOutcome
    results: tuple[ScriptResult, ...] = ()
    tickets: tuple[TicketRequest, ...] = ()
    resume_from: str | None = None  # "script_id/question_id"
    opted_out: bool = False
    transferred_to: str | None = None
    red_flags: int = 0


def combine(results: Sequence[ScriptResult]) -> CallIvrResult:
    outcomes = {r.outcome for r in results}
    outcome = next((o for o in _PRECEDENCE if o in outcomes), ScriptOutcome.PARTIAL)
    resume = next((f"{r.script_id}/{r.resume_from}" for r in results if r.resume_from), None)
    return CallIvrResult(
        outcome=outcome, results=tuple(results),
        tickets=tuple(t for r in results for t in r.tickets), resume_from=resume,
        opted_out=any(r.opted_out for r in results),
        transferred_to=next((r.transferred_to for r in results if r.transferred_to), None),
        red_flags=sum(len(r.red_flags) for r in results))


class ScriptLibrary:
    """The loaded scripts, by id, version and locale."""

    def __init__(self, scripts: Sequence[Script], default_locale: str) -> None:
        self._by_key: dict[tuple[str, int, str], Script] = {
            (s.id, s.version, s.locale): s for s in scripts}
        self._default_locale = default_locale

    def pick(self, script_id: str, version: int, locale: str) -> Script:
        for loc in (locale, self._default_locale):
            found = self._by_key.get((script_id, version, loc))
            if found is not None:
                return found
        for (sid, ver, _), script in sorted(self._by_key.items()):
            if sid == script_id and ver == version:
                return script
        raise NotFound(f"no script {script_id} v{version}")


class StoreAnswerSink:
    """Writes each answer to the store the moment the interpreter has it."""

    def __init__(self, db: Database, attempts: AttemptLog, attempt_id: int,
                 clock: Clock) -> None:
        self._db = db
        self._attempts = attempts
        self._attempt_id = attempt_id
        self._clock = clock
        self.saved = 0

    async def save(self, answer: Answer) -> None:
        await self._db.call(self._attempts.save_answer, self._attempt_id, answer,
                                self._clock.now())
        self.saved += 1


class RecognizerFactory(Protocol):
    def __call__(self) -> SpeechRecognizer | None: ...


@dataclass(frozen=True)
class HandlerSettings:
    hospital: str
    hospital_en: str
    emergency_number: str
    nurse_queue: str
    agent_queue: str
    nurse_hours: str
    hospital_tz: str
    min_confidence: float = 0.6
    extra_variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Loaded:
    scripts: list[Script]
    context: CallContext


class IvrCallHandler:
    """Runs the IVR for one answered attempt."""

    def __init__(self, db: Database, attempts: AttemptLog, library: ScriptLibrary,
                 prompts: PromptSource, recognizer: SpeechRecognizer | None,
                 settings: HandlerSettings, clock: Clock) -> None:
        self._db = db
        self._attempts = attempts
        self._library = library
        self._prompts = prompts
        self._recognizer = recognizer
        self._settings = settings
        self._clock = clock
        self._nurse_hours = parse_calling_window(settings.nurse_hours)

    async def __call__(self, attempt_id: int, channel: Channel) -> CallIvrResult:
        now = self._clock.now()
        await self._db.call(self._attempts.mark_answered, attempt_id, now)
        loaded = await self._db.call(self._load, attempt_id, now)
        sink = StoreAnswerSink(self._db, self._attempts, attempt_id, self._clock)
        interpreter = ScriptInterpreter(self._prompts, sink, self._recognizer,
                                        self._settings.min_confidence)
        results = await interpreter.run_many(loaded.scripts, channel, loaded.context)
        return combine(results)

    def _load(self, attempt_id: int, now: dt.datetime) -> _Loaded:
        with self._db.session() as s:
            attempt = s.get(CallAttempt, attempt_id)
            if attempt is None:
                raise NotFound(f"attempt {attempt_id} not found")
            task = s.get(FollowupTask, attempt.task_id)
            patient = s.get(Patient, attempt.patient_id)
            if task is None or patient is None:
                raise NotFound(f"attempt {attempt_id} has no task or patient")
            dept = s.get(Department, task.department_id)
            enc = s.get(Encounter, task.encounter_id)
            pairs = call_script_versions(s, task)
            earlier = [
                Answer(script_id=r.script_id, script_version=r.script_version,
                       question_id=r.question_id, kind=r.kind, source=r.source, value=r.value,
                       transcript=r.transcript, confidence=r.confidence,
                       needs_review=r.needs_review, note=r.note, red_flag=r.red_flag,
                       audio=clip, offset_ms=r.offset_ms)
                for r, clip in self._attempts.earlier_answers(task.id)
            ]
        scripts = [self._library.pick(sid, ver, patient.language) for sid, ver in pairs]
        zh = patient.language.startswith("zh")
        title = {Sex.MALE: "先生" if zh else "Mr.", Sex.FEMALE: "女士" if zh else "Ms."}.get(
            patient.sex, "")
        visit: dict[str, str] = {}
        if enc is not None and enc.discharge_at is not None:
            visit["discharge_date"] = enc.discharge_at.date().isoformat()
        prompt = PromptContext(
            patient_name=patient.name, patient_title=title,
            hospital=self._settings.hospital if zh else self._settings.hospital_en,
            department=(dept.name if zh or dept is None else dept.name_en or dept.name)
            if dept else "",
            emergency_number=self._settings.emergency_number, visit=visit)
        variables = {"FOLLOWUP_ATTEMPT": str(attempt_id), "FOLLOWUP_TASK": str(task.id),
                     **self._settings.extra_variables}
        context = CallContext(
            prompt=prompt,
            birth_year=patient.birth_date.year if patient.birth_date else None,
            staffed_hours=self._nurse_hours.contains(now, self._settings.hospital_tz),
            nurse_queue=self._settings.nurse_queue, agent_queue=self._settings.agent_queue,
            earlier_answers=tuple(a for a in earlier if a.answered),
            channel_variables=variables)
        return _Loaded(scripts, context)


def patient_ids_for_attempts(db: Database, attempt_ids: list[int]) -> dict[int, int]:
    """attempt id -> patient id (for logs and the sim)."""
    with db.session() as s:
        rows = s.execute(select(CallAttempt.id, CallAttempt.patient_id)
                         .where(CallAttempt.id.in_(attempt_ids))).all()
    return {int(a): int(p) for a, p in rows}
