"""Builds a `CallPlan` before the originate: everything the IVR needs, read once.

`CallPlanner.prepare(task, now)` (blocking, in a worker thread) reads the patient, the
department, the visit and the answers earlier calls stored, and picks each script version
in the locale the call will speak; titles and the hospital's and department's names follow
that locale, not the patient's record. It also says when there is nothing left to ask (a
call cut off after its last answer): the campaign then closes the task instead of calling
again. `CallPlanner.plan(prepared, attempt_id)` binds the attempt and renders the opening and the
greeting, so the first prompt is ready the moment the patient answers and the greeting the
moment identity is verified.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from sqlalchemy import Table, bindparam, select

from core.calling_window import parse_calling_window
from core.errors import NotFound
from core.store.db import Database
from core.store.models import Department, Encounter, Patient
from dialer.attempt_log import AttemptLog
from dialer.call_plan import AttemptId, CallPlan
from dialer.claims import ClaimedTask
from ivr.call_context import CallContext
from ivr.call_state import first_unanswered, script_answers
from ivr.messages import patient_title
from ivr.prompt_maker import PromptSource
from ivr.prompts import PromptContext
from ivr.results import Answer
from ivr.script_library import ScriptLibrary as ScriptLibrary  # re-exported: its old home
from ivr.script_model import MachineAction, Script

ATTEMPT_VARIABLE = "FOLLOWUP_ATTEMPT"
TASK_VARIABLE = "FOLLOWUP_TASK"


PATIENTS: Table = Patient.__table__  # type: ignore[assignment]
DEPARTMENTS: Table = Department.__table__  # type: ignore[assignment]
ENCOUNTERS: Table = Encounter.__table__  # type: ignore[assignment]
# read before every call: built once (see dialer.claims)
_CALL_CONTEXT = (
    select(PATIENTS.c.name, PATIENTS.c.sex, PATIENTS.c.birth_date, DEPARTMENTS.c.name,
           DEPARTMENTS.c.name_en, ENCOUNTERS.c.discharge_at, PATIENTS.c.voicemail_ok)
    .select_from(PATIENTS)
    .outerjoin(DEPARTMENTS, DEPARTMENTS.c.id == bindparam("d_id"))
    .outerjoin(ENCOUNTERS, ENCOUNTERS.c.id == bindparam("e_id"))
    .where(PATIENTS.c.id == bindparam("p_id")))


@dataclass(frozen=True)
class PlannerSettings:
    hospital: str
    hospital_en: str
    hospital_language: str  # the locale whose names are `hospital` / department `name`
    emergency_number: str
    nurse_queue: str
    agent_queue: str
    nurse_hours: str
    hospital_tz: str
    caller_id: str = ""
    caller_name: str = ""
    ring_timeout_s: int = 30
    callback_number: str = ""  # for a voicemail message; empty: never leave one


@dataclass(frozen=True)
class PreparedCall:
    """A plan without its attempt yet. `nothing_left`: every script's questions were
    answered on earlier calls. `voicemail_ok`: the patient agreed to messages."""

    task: ClaimedTask
    phone: str
    scripts: tuple[Script, ...]
    context: CallContext
    voicemail_ok: bool = False

    @property
    def nothing_left(self) -> bool:
        for script in self.scripts:
            values, answered = script_answers(script, self.context.earlier_answers)
            if first_unanswered(script, values, answered) is not None:
                return False
        return True


class CallPlanner:
    def __init__(self, db: Database, attempts: AttemptLog, library: ScriptLibrary,
                 prompts: PromptSource, settings: PlannerSettings) -> None:
        self._db = db
        self._attempts = attempts
        self._library = library
        self._prompts = prompts
        self._settings = settings
        self._nurse_hours = parse_calling_window(settings.nurse_hours)

    def prepare(self, task: ClaimedTask, now: dt.datetime) -> PreparedCall:
        """Read what the call needs (blocking). Raises NotFound if the patient vanished."""
        st = self._settings
        with self._db.connection() as conn:
            row = conn.execute(_CALL_CONTEXT, {"p_id": task.patient_id,
                                               "d_id": task.department_id,
                                               "e_id": task.encounter_id}).first()
        if row is None:
            raise NotFound(f"task {task.task_id}: patient {task.patient_id} not found")
        name, sex, birth, dept_name, dept_name_en, discharge, voicemail_ok = row
        dept_names = (dept_name or "", dept_name_en or dept_name or "")
        # answers exist only after an attempt that counted (a first call has none)
        earlier = [
            Answer(script_id=r.script_id, script_version=r.script_version,
                   question_id=r.question_id, kind=r.kind, source=r.source,
                   value=r.value, transcript=r.transcript, confidence=r.confidence,
                   needs_review=r.needs_review, note=r.note, red_flag=r.red_flag,
                   audio=clip, offset_ms=r.offset_ms)
            for r, clip in self._attempts.earlier_answers(task.task_id)
        ] if task.attempts > 0 else []
        scripts = tuple(self._library.pick(sid, ver, task.language)
                        for sid, ver in task.call_scripts)
        locale = scripts[0].locale
        native = locale == st.hospital_language
        visit: dict[str, str] = {}
        if discharge is not None:
            visit["discharge_date"] = discharge.date().isoformat()
        prompt = PromptContext(
            patient_name=name, patient_title=patient_title(locale, sex),
            hospital=st.hospital if native else st.hospital_en,
            department=dept_names[0] if native else dept_names[1],
            emergency_number=st.emergency_number, callback_number=st.callback_number,
            visit=visit)
        context = CallContext(
            prompt=prompt, birth_year=birth.year if birth else None,
            staffed_hours=self._nurse_hours.contains(now, st.hospital_tz),
            nurse_queue=st.nurse_queue, agent_queue=st.agent_queue,
            earlier_answers=tuple(a for a in earlier if a.answered),
            staff_language=st.hospital_language)
        return PreparedCall(task, task.phone, scripts, context, bool(voicemail_ok))

    async def plan(self, prepared: PreparedCall, attempt_id: AttemptId) -> CallPlan:
        """Bind the attempt (its id rides on every transfer) and render the opening and the
        greeting now, before the originate: the patient hears the opening the moment they
        answer, and the greeting (private) the moment identity is verified."""
        st = self._settings
        variables = {ATTEMPT_VARIABLE: str(attempt_id),
                     TASK_VARIABLE: str(prepared.task.task_id)}
        context = replace(prepared.context, channel_variables=variables)
        first = prepared.scripts[0]
        opening = await self._prompts.prompt(first, "msg.opening", first.message("opening"),
                                             context.prompt, False)
        greeting = await self._prompts.prompt(first, "greeting", first.greeting,
                                              context.prompt, True)
        voicemail = None
        if first.on_machine is MachineAction.LEAVE_MESSAGE and prepared.voicemail_ok \
                and st.callback_number:
            voicemail = await self._prompts.prompt(first, "msg.voicemail",
                                                   first.message("voicemail"),
                                                   context.prompt, False)
        return CallPlan(attempt_id=attempt_id, task=prepared.task, phone=prepared.phone,
                        scripts=prepared.scripts, context=context, caller_id=st.caller_id,
                        caller_name=st.caller_name, ring_timeout_s=st.ring_timeout_s,
                        opening=opening, greeting=greeting, voicemail=voicemail)
