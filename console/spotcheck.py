"""Supervisors' spot-checks: draw a sample, score each call on the QA form, see progress."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from console.access import Principal
from console.forms import FormError, QaForm, SampleForm
from console.periods import day_range
from core.audit import AuditLog
from core.clock import Clock
from core.errors import NotFound
from core.store.models import (
    CallAttempt,
    Department,
    FollowupTask,
    Patient,
    QaReview,
    SpotCheckItem,
    SpotCheckSample,
)
from recordings.sampling import choose_sample, recorded_calls


@dataclass(frozen=True, slots=True)
class SampleSummary:
    id: int
    department: str
    script_id: str
    day: dt.date
    rate_percent: float
    population: int
    size: int
    reviewed: int
    department_name: str = ""
    department_name_en: str = ""

    @property
    def progress_percent(self) -> int:
        return round(100 * self.reviewed / self.size) if self.size else 100


@dataclass(frozen=True, slots=True)
class SampleItemRow:
    item_id: int
    attempt_id: int
    patient_name: str
    created_at: dt.datetime
    reviewed: bool


class SpotCheckService:
    def __init__(self, clock: Clock, audit: AuditLog, tz: str) -> None:
        self._clock = clock
        self._audit = audit
        self._tz = tz

    def draw(self, session: Session, who: Principal, form: SampleForm) -> SpotCheckSample:
        """Raises FormError (department outside scope, nothing recorded that day)."""
        if not who.sees(form.department_id) or session.get(Department, form.department_id) \
                is None:
            raise FormError("department_id", "unknown_choice")
        start, end = day_range(form.day, self._tz)
        population = recorded_calls(session, form.department_id, start, end, form.script_id)
        if not population:
            raise FormError("day", "nothing_recorded")
        seed = secrets.randbits(48)
        chosen = choose_sample(population, form.rate_percent / 100, seed)
        sample = SpotCheckSample(department_id=form.department_id, script_id=form.script_id,
                                 day=form.day, rate=form.rate_percent / 100, seed=seed,
                                 population=len(population), created_by=who.user_id,
                                 created_at=self._clock.now())
        session.add(sample)
        session.flush()
        session.add_all(SpotCheckItem(sample_id=sample.id, attempt_id=a, position=i)
                        for i, a in enumerate(chosen, 1))
        self._audit.append(session, who.actor, "spotcheck.draw", "spot_check_sample",
                           sample.id, {"population": len(population), "size": len(chosen),
                                       "seed": seed})
        return sample

    def samples(self, session: Session, who: Principal) -> list[SampleSummary]:
        size = func.count(SpotCheckItem.id)
        reviewed = func.count(SpotCheckItem.reviewed_at)
        rows = session.execute(
            select(SpotCheckSample, Department.code, size, reviewed, Department.name,
                   Department.name_en)
            .join(Department, Department.id == SpotCheckSample.department_id)
            .outerjoin(SpotCheckItem, SpotCheckItem.sample_id == SpotCheckSample.id)
            .where(who.scope(SpotCheckSample.department_id))
            .group_by(SpotCheckSample.id, Department.code, Department.name,
                      Department.name_en)
            .order_by(SpotCheckSample.id.desc()).limit(100)).all()
        return [SampleSummary(s.id, code, s.script_id or "", s.day, s.rate * 100,
                              s.population, n, r, dept, dept_en or "")
                for s, code, n, r, dept, dept_en in rows]

    def sample(self, session: Session, who: Principal, sample_id: int
               ) -> tuple[SampleSummary, list[SampleItemRow]]:
        summary = next((s for s in self.samples(session, who) if s.id == sample_id), None)
        if summary is None:
            sample = session.execute(select(SpotCheckSample).where(
                SpotCheckSample.id == sample_id, who.scope(SpotCheckSample.department_id))
            ).scalar_one_or_none()
            if sample is None:
                raise NotFound(f"sample {sample_id} not found")
            summary = self._summary(session, sample)
        rows = session.execute(
            select(SpotCheckItem, Patient.name, CallAttempt.created_at)
            .join(CallAttempt, CallAttempt.id == SpotCheckItem.attempt_id)
            .join(Patient, Patient.id == CallAttempt.patient_id)
            .where(SpotCheckItem.sample_id == sample_id)
            .order_by(SpotCheckItem.position)).all()
        return summary, [SampleItemRow(i.id, i.attempt_id, name, at, i.reviewed_at is not None)
                         for i, name, at in rows]

    def _summary(self, session: Session, s: SpotCheckSample) -> SampleSummary:
        dept = session.get(Department, s.department_id)
        n, r = session.execute(select(func.count(SpotCheckItem.id),
                                      func.count(SpotCheckItem.reviewed_at))
                               .where(SpotCheckItem.sample_id == s.id)).one()
        return SampleSummary(s.id, dept.code if dept else "", s.script_id or "", s.day,
                             s.rate * 100, s.population, n, r)

    def item(self, session: Session, who: Principal, item_id: int
             ) -> tuple[SpotCheckItem, QaReview | None]:
        row = session.execute(
            select(SpotCheckItem).join(SpotCheckSample,
                                       SpotCheckSample.id == SpotCheckItem.sample_id)
            .where(SpotCheckItem.id == item_id, who.scope(SpotCheckSample.department_id))
        ).scalar_one_or_none()
        if row is None:
            raise NotFound(f"spot-check item {item_id} not found")
        review = session.execute(select(QaReview).where(QaReview.item_id == item_id)
                                 ).scalar_one_or_none()
        return row, review

    def review(self, session: Session, who: Principal, item_id: int, form: QaForm) -> None:
        """Save (or replace) the QA form of one sampled call."""
        item, review = self.item(session, who, item_id)
        now = self._clock.now()
        if review is None:
            review = QaReview(item_id=item.id, reviewer_id=who.user_id, created_at=now)
            session.add(review)
        review.reviewer_id = who.user_id
        review.scores = dict(form.scores)
        review.flags = [f.value for f in form.flags]
        review.comment = form.comment
        review.created_at = now
        item.reviewed_at = now
        self._audit.append(session, who.actor, "spotcheck.review", "spot_check_item", item.id,
                           {"attempt_id": item.attempt_id, "scores": dict(form.scores),
                            "flags": [f.value for f in form.flags]})


def scripts_in_scope(session: Session, who: Principal, today: dt.date,
                     days: int = 90) -> list[str]:
    """Script ids of the caller's departments' tasks due in the last `days` (for the sample
    form; bounded by the due-date index, never a scan of every task)."""
    return list(session.execute(
        select(FollowupTask.script_id).distinct()
        .where(FollowupTask.due_date > today - dt.timedelta(days=days),
               FollowupTask.due_date <= today, who.scope(FollowupTask.department_id))
        .order_by(FollowupTask.script_id).limit(200)).scalars())
