"""Reading finished follow-ups out of the store for FHIR: one `FinishedFollowup` per script
asked in a follow-up whose task is done, with the answer each question got last."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import ColumnElement, Row, select
from sqlalchemy.orm import Session

from core.clock import ensure_utc
from core.enums import AnswerSource, ScriptOutcome, TaskStatus
from core.store.models import Answer, Encounter, FollowupTask, Patient
from fhir_r4.resources import AnswerFact, FinishedFollowup

# (script id, version, language, question id, stored value) -> the option's label, if any
Labels = Callable[[str, int, str, str, str], str | None]


def finished_followups(session: Session, labels: Labels, batch: int = 500,
                       only: ColumnElement[bool] | None = None) -> Iterator[FinishedFollowup]:
    """Every done task's scripts with their answers, oldest task first, read in batches
    (`only`: a further filter on the tasks, e.g. `outbox.unqueued_done_tasks()`)."""
    after = 0
    while True:
        tasks = session.execute(
            select(FollowupTask.id, FollowupTask.outcome, FollowupTask.closed_at,
                   FollowupTask.updated_at, Patient.his_id, Patient.language,
                   Encounter.his_id.label("visit"))
            .join(Patient, Patient.id == FollowupTask.patient_id)
            .join(Encounter, Encounter.id == FollowupTask.encounter_id)
            .where(FollowupTask.status == TaskStatus.DONE, FollowupTask.id > after,
                   *([] if only is None else [only]))
            .order_by(FollowupTask.id).limit(batch)).all()
        if not tasks:
            return
        after = tasks[-1].id
        answers: dict[int, list[Answer]] = {}
        for a in session.execute(select(Answer).where(
                Answer.task_id.in_([t.id for t in tasks]),
                Answer.source != AnswerSource.NONE).order_by(Answer.created_at, Answer.id)
                ).scalars():
            answers.setdefault(a.task_id, []).append(a)
        for t in tasks:
            yield from _scripts(t, answers.get(t.id, []), labels)


def _scripts(t: Row[*tuple[Any, ...]], answers: list[Answer], labels: Labels
             ) -> Iterator[FinishedFollowup]:
    by_script: dict[tuple[str, int], dict[str, Answer]] = {}
    for a in answers:  # oldest first: a later call's answer to a question replaces it
        by_script.setdefault((a.script_id, a.script_version), {})[a.question_id] = a
    for (script_id, version), latest in by_script.items():
        yield FinishedFollowup(
            task_id=t.id, script_id=script_id, script_version=version,
            language=t.language, patient_his_id=t.his_id,
            encounter_his_id=t.visit,
            authored=ensure_utc(t.closed_at or t.updated_at),
            completed=t.outcome == ScriptOutcome.COMPLETED.value,
            answers=tuple(AnswerFact(a.question_id, a.kind, a.value, a.transcript,
                                     labels(script_id, version, t.language,
                                            a.question_id, a.value or ""), a.note)
                          for a in latest.values()))
