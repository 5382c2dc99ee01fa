"""The monthly satisfaction report of one department, computed from our own store.

Response: follow-up tasks due in the month (not cancelled or merged) and how they ended.
Per question, from the calls made in the month, by its kind: a scale question's mean with
its 95% CI (each question on its own range: a 1-5 item and a 0-10 pain score are never
averaged together); a yes/no question's share of "yes" (`YesNo.YES`, as every channel
stores it) with its Wilson 95% CI; a choice question's distribution (answers per option);
a number's median and interquartile range (`statistics.quantiles`, inclusive method); a
voice question's count of spoken answers and how many still wait for a person's review.
Any cell with fewer than `MIN_CELL` answers is suppressed.
Messages: of the department's SMS queued in the month, those the gateway took, those
delivered, and of the questionnaire links among them those whose questionnaire was finished
(the delivery and link response rates, suppressed below `MIN_CELL` like the rest).
Finished months are kept in `report_snapshots` (tagged with `SNAPSHOT_FORMAT`; a snapshot
of an older format is recomputed), so the twelve-month trend reads twelve small rows
instead of a year of answers. Whoever sees every department also gets the hospital-wide
ranking of the month's response rates.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Float, case, cast, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from console.access import Principal
from console.periods import (
    ID_CHUNK,
    chunked,
    month_key,
    month_range,
    next_month,
    previous_month,
)
from console.questions import IndexItem
from core.clock import Clock
from core.enums import (
    AnswerSource,
    DialOutcome,
    MessagePurpose,
    MessageStatus,
    QuestionKind,
    TaskStatus,
    YesNo,
)
from core.errors import NotFound
from core.store.models import (
    Answer,
    CallAttempt,
    Department,
    FollowupTask,
    ReportSnapshot,
    SmsMessage,
    WebLink,
)

MIN_CELL = 5
# 2: yes/no shares count "yes" (format 1 counted "true", which no channel stores) and the
# pooled mean of all scale answers is gone; 3: choice, number and voice questions too;
# 4: the templates' satisfaction index; 5: messages sent, delivered and answered
SNAPSHOT_FORMAT = 5
TREND_MONTHS = 12
WORST_ITEMS = 3
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
        9: 2.262, 10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 25: 2.060, 30: 2.042,
        40: 2.021, 60: 2.000, 120: 1.980}


def t95(df: int) -> float:
    """Two-sided 95% Student t quantile (table, rounded down to a listed df; 1.96 beyond)."""
    if df < 1:
        return math.inf
    best = 1.96
    for k in sorted(_T95, reverse=True):
        if df >= k:
            best = _T95[k] if df <= 120 else 1.96
            break
    return best


def mean_ci(n: int, total: float, total_sq: float) -> tuple[float, float, float]:
    """Mean and 95% CI from n, sum and sum of squares."""
    mean = total / n
    if n < 2:
        return mean, -math.inf, math.inf
    var = max(0.0, (total_sq - n * mean * mean) / (n - 1))
    half = t95(n - 1) * math.sqrt(var / n)
    return mean, mean - half, mean + half


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float, float]:
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return p, max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True, slots=True)
class QuestionStat:
    """One question's figures. `mean`/`low`/`high`: a scale's mean or a yes/no's share of
    yes with the 95% CI; `counts`: a choice's answers per option value, most chosen first;
    `median`/`q1`/`q3`: a number's; `pending_review`: a voice question's answers still
    flagged for review. All None / empty when suppressed (fewer than `MIN_CELL`)."""

    script_id: str
    question_id: str
    kind: str  # a QuestionKind value
    n: int
    mean: float | None  # None when suppressed, and for kinds without a mean
    low: float | None
    high: float | None
    counts: tuple[tuple[str, int], ...] = ()
    median: float | None = None
    q1: float | None = None
    q3: float | None = None
    pending_review: int = 0

    @property
    def suppressed(self) -> bool:
        return self.n < MIN_CELL

    @property
    def key(self) -> str:
        return f"{self.script_id}/{self.question_id}"


@dataclass(frozen=True, slots=True)
class MonthFigures:
    month: str
    eligible: int
    responded: int
    failed: int
    stopped: int
    still_open: int
    answers: int  # scale and yes/no answers given in the month's calls
    # the templates' satisfaction index (0-100): the mean over answered calls of each
    # call's mean of its index items, each normalised (`IndexItem.score`), with its 95% CI;
    # None when no template defines one or fewer than `MIN_CELL` calls answered an item
    satisfaction: float | None = None
    satisfaction_low: float | None = None
    satisfaction_high: float | None = None
    satisfaction_calls: int = 0
    # messages queued in the month that went to the gateway, and of those delivered;
    # questionnaire links among them, and the links whose questionnaire was finished
    sms_sent: int = 0
    sms_delivered: int = 0
    links_sent: int = 0
    links_answered: int = 0

    @property
    def response_rate(self) -> float | None:
        if self.eligible < MIN_CELL:
            return None
        return self.responded / self.eligible

    @property
    def sms_delivery_rate(self) -> float | None:
        """Delivered over sent; None below `MIN_CELL` messages."""
        return None if self.sms_sent < MIN_CELL else self.sms_delivered / self.sms_sent

    @property
    def link_response_rate(self) -> float | None:
        """Questionnaires finished over links sent; None below `MIN_CELL` links."""
        return None if self.links_sent < MIN_CELL else self.links_answered / self.links_sent

    @property
    def non_response(self) -> int:
        return self.eligible - self.responded


@dataclass(frozen=True, slots=True)
class DepartmentRank:
    """One department's month in the hospital-wide ranking."""

    department_id: int
    code: str
    name: str
    name_en: str
    figures: MonthFigures


@dataclass(frozen=True, slots=True)
class MonthlyReport:
    department_id: int
    department_code: str
    department_name: str
    department_name_en: str
    month: str
    figures: MonthFigures
    questions: tuple[QuestionStat, ...]
    trend: tuple[MonthFigures, ...]  # oldest first, ending with this month
    worst: tuple[QuestionStat, ...]
    min_cell: int = MIN_CELL
    # every department's month, best response rate first (suppressed last); empty unless
    # the reader sees every department
    ranking: tuple[DepartmentRank, ...] = ()

    @property
    def first_day(self) -> dt.date:
        return dt.date.fromisoformat(self.month + "-01")

    @property
    def last_day(self) -> dt.date:
        return next_month(self.first_day) - dt.timedelta(days=1)


def _suppress(n: int) -> bool:
    return n < MIN_CELL


def month_figures(session: Session, department_id: int, first: dt.date, tz: str,
                  index: tuple[IndexItem, ...] = ()) -> tuple[MonthFigures,
                                                          tuple[QuestionStat, ...]]:
    """Compute one month from the raw rows (grouped queries over index ranges); `index`:
    the templates' satisfaction index items."""
    by_status: dict[TaskStatus, int] = {status: int(n) for status, n in session.execute(
        select(FollowupTask.status, func.count())
        .where(FollowupTask.due_date >= first, FollowupTask.due_date < next_month(first),
               FollowupTask.department_id == department_id,
               FollowupTask.status.not_in([TaskStatus.CANCELLED, TaskStatus.MERGED]))
        .group_by(FollowupTask.status)).all()}
    eligible = sum(by_status.values())
    start, end = month_range(first, tz)
    # The month's answered attempts by the (department, created_at) index, then their answers
    # by attempt id, in chunks; sums add up across chunks.
    attempt_ids = list(session.execute(
        select(CallAttempt.id).where(CallAttempt.department_id == department_id,
                                     CallAttempt.created_at >= start,
                                     CallAttempt.created_at < end,
                                     CallAttempt.dial_outcome == DialOutcome.ANSWERED)
    ).scalars())
    score = cast(Answer.value, Float)
    sums: dict[tuple[str, str, QuestionKind], list[float]] = {}
    values: dict[tuple[str, str, QuestionKind], dict[str, int]] = {}
    voice: dict[tuple[str, str], list[int]] = {}
    per_call: dict[int, list[float]] = {}  # attempt -> its index items' scores
    for chunk in chunked(attempt_ids, ID_CHUNK):
        for script_id, question_id, kind, n, s1, s2, yes in session.execute(
                select(Answer.script_id, Answer.question_id, Answer.kind, func.count(),
                       func.sum(case((Answer.kind == QuestionKind.SCALE, score), else_=None)),
                       func.sum(case((Answer.kind == QuestionKind.SCALE, score * score),
                                     else_=None)),
                       func.sum(case((Answer.value == YesNo.YES.value, 1), else_=0)))
                .where(Answer.attempt_id.in_(chunk),
                       Answer.kind.in_([QuestionKind.SCALE, QuestionKind.YES_NO]),
                       Answer.source != AnswerSource.NONE, Answer.value.is_not(None))
                .group_by(Answer.script_id, Answer.question_id, Answer.kind)):
            acc = sums.setdefault((script_id, question_id, kind), [0, 0.0, 0.0, 0])
            acc[0] += int(n)
            acc[1] += float(s1 or 0)
            acc[2] += float(s2 or 0)
            acc[3] += int(yes or 0)
        _count_values(session, chunk, values)
        _count_voice(session, chunk, voice)
        if index:
            _index_scores(session, chunk, index, per_call)
    stats: list[QuestionStat] = []
    all_n = 0
    for (script_id, question_id, kind), (n_, s1, s2, yes) in sums.items():
        n = int(n_)
        all_n += n
        if kind is QuestionKind.SCALE:
            m, lo, hi = mean_ci(n, float(s1 or 0), float(s2 or 0))
        else:
            m, lo, hi = wilson(int(yes or 0), n)
        if _suppress(n):
            stats.append(QuestionStat(script_id, question_id, kind.value, n, None, None, None))
        else:
            stats.append(QuestionStat(script_id, question_id, kind.value, n, m, lo, hi))
    stats.extend(_value_stat(script_id, question_id, kind, counts)
                 for (script_id, question_id, kind), counts in values.items())
    stats.extend(QuestionStat(script_id, question_id, QuestionKind.VOICE.value, n, None, None,
                              None, pending_review=pending if not _suppress(n) else 0)
                 for (script_id, question_id), (n, pending) in voice.items())
    stats.sort(key=lambda q: (q.script_id, q.question_id))
    figures = MonthFigures(
        month=month_key(first), eligible=eligible,
        responded=by_status.get(TaskStatus.DONE, 0), failed=by_status.get(TaskStatus.FAILED, 0),
        stopped=by_status.get(TaskStatus.STOPPED, 0),
        still_open=by_status.get(TaskStatus.PENDING, 0) + by_status.get(TaskStatus.CLAIMED, 0),
        answers=all_n, **_satisfaction(per_call), **_messages(session, department_id, start, end))
    return figures, tuple(stats)


def _messages(session: Session, department_id: int, start: dt.datetime,
              end: dt.datetime) -> dict[str, int]:
    """The month's messages of the department (by when they were queued): sent (taken by
    the gateway), delivered, questionnaire links sent, and links whose questionnaire was
    finished."""
    went = [MessageStatus.SUBMITTED, MessageStatus.DELIVERED, MessageStatus.FAILED]
    link = SmsMessage.purpose == MessagePurpose.QUESTIONNAIRE_LINK
    sent, delivered, links, answered = session.execute(
        select(func.count(),
               func.sum(case((SmsMessage.status == MessageStatus.DELIVERED, 1), else_=0)),
               func.sum(case((link, 1), else_=0)),
               func.sum(case((WebLink.used_at.is_not(None), 1), else_=0)))
        .select_from(SmsMessage).outerjoin(WebLink, WebLink.id == SmsMessage.link_id)
        .where(SmsMessage.department_id == department_id, SmsMessage.created_at >= start,
               SmsMessage.created_at < end, SmsMessage.status.in_(went))).one()
    return {"sms_sent": int(sent), "sms_delivered": int(delivered or 0),
            "links_sent": int(links or 0), "links_answered": int(answered or 0)}


def _index_scores(session: Session, attempt_ids: Sequence[int], index: tuple[IndexItem, ...],
                  into: dict[int, list[float]]) -> None:
    """Each attempt's answers to index items, scored 0-100."""
    items = {(i.script_id, i.question_id): i for i in index}
    for attempt_id, script_id, question_id, value in session.execute(
            select(Answer.attempt_id, Answer.script_id, Answer.question_id, Answer.value)
            .where(Answer.attempt_id.in_(attempt_ids),
                   Answer.script_id.in_(sorted({i.script_id for i in index})),
                   Answer.kind.in_([QuestionKind.SCALE, QuestionKind.YES_NO]),
                   Answer.source != AnswerSource.NONE, Answer.value.is_not(None))):
        item = items.get((script_id, question_id))
        score = item.score(value) if item is not None and value is not None else None
        if score is not None:
            into.setdefault(attempt_id, []).append(score)


def _satisfaction(per_call: dict[int, list[float]]) -> dict[str, Any]:
    """The index over calls (each call's mean counts once), suppressed below `MIN_CELL`."""
    means = [sum(s) / len(s) for s in per_call.values() if s]
    if _suppress(len(means)):
        return {"satisfaction_calls": len(means)}
    m, lo, hi = mean_ci(len(means), sum(means), sum(x * x for x in means))
    return {"satisfaction": m, "satisfaction_low": max(0.0, lo),
            "satisfaction_high": min(100.0, hi), "satisfaction_calls": len(means)}


def _count_values(session: Session, attempt_ids: Sequence[int],
                  into: dict[tuple[str, str, QuestionKind], dict[str, int]]) -> None:
    """Choice and number answers of these attempts, counted per stored value."""
    for script_id, question_id, kind, value, n in session.execute(
            select(Answer.script_id, Answer.question_id, Answer.kind, Answer.value, func.count())
            .where(Answer.attempt_id.in_(attempt_ids),
                   Answer.kind.in_([QuestionKind.CHOICE, QuestionKind.NUMBER]),
                   Answer.source != AnswerSource.NONE, Answer.value.is_not(None))
            .group_by(Answer.script_id, Answer.question_id, Answer.kind, Answer.value)):
        counts = into.setdefault((script_id, question_id, kind), {})
        counts[str(value)] = counts.get(str(value), 0) + int(n)


def _count_voice(session: Session, attempt_ids: Sequence[int],
                 into: dict[tuple[str, str], list[int]]) -> None:
    """Spoken answers of these attempts per voice question: [answers, awaiting review]."""
    for script_id, question_id, pending, n in session.execute(
            select(Answer.script_id, Answer.question_id, Answer.needs_review, func.count())
            .where(Answer.attempt_id.in_(attempt_ids), Answer.kind == QuestionKind.VOICE,
                   Answer.source == AnswerSource.VOICE)
            .group_by(Answer.script_id, Answer.question_id, Answer.needs_review)):
        acc = into.setdefault((script_id, question_id), [0, 0])
        acc[0] += int(n)
        acc[1] += int(n) if pending else 0


def _value_stat(script_id: str, question_id: str, kind: QuestionKind,
                counts: dict[str, int]) -> QuestionStat:
    """A choice's distribution or a number's median and quartiles (suppressed below
    `MIN_CELL`). A number stored as anything but an integer is left out."""
    n = sum(counts.values())
    if _suppress(n):
        return QuestionStat(script_id, question_id, kind.value, n, None, None, None)
    if kind is QuestionKind.CHOICE:
        ranked = tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        return QuestionStat(script_id, question_id, kind.value, n, None, None, None,
                            counts=ranked)
    numbers = sorted(int(v) for v, c in counts.items() if _is_integer(v) for _ in range(c))
    if len(numbers) < 2:
        return QuestionStat(script_id, question_id, kind.value, len(numbers), None, None, None)
    q1, median, q3 = statistics.quantiles(numbers, n=4, method="inclusive")
    return QuestionStat(script_id, question_id, kind.value, len(numbers), None, None, None,
                        median=median, q1=q1, q3=q3)


def _is_integer(value: str) -> bool:
    text = value.strip()
    return text.isascii() and text.lstrip("-").isdigit()


def _to_snapshot(figures: MonthFigures, stats: tuple[QuestionStat, ...]) -> dict[str, Any]:
    return {"format": SNAPSHOT_FORMAT, "figures": asdict(figures),
            "questions": [asdict(q) for q in stats]}


def _from_snapshot(data: dict[str, Any]
                   ) -> tuple[MonthFigures, tuple[QuestionStat, ...]] | None:
    """The kept figures; None for a snapshot of an older format (recomputed)."""
    if data.get("format") != SNAPSHOT_FORMAT:
        return None
    return (MonthFigures(**data["figures"]),
            tuple(QuestionStat(**{**q, "counts": tuple((v, c) for v, c in q["counts"])})
                  for q in data["questions"]))


class ReportService:
    def __init__(self, clock: Clock, tz: str, index: tuple[IndexItem, ...] = ()) -> None:
        self._clock = clock
        self._tz = tz
        self._index = index

    def _month(self, session: Session, department_id: int, first: dt.date
               ) -> tuple[MonthFigures, tuple[QuestionStat, ...]]:
        """A finished month from its snapshot (made on first use); the current one live."""
        _, end = month_range(first, self._tz)
        finished = end <= self._clock.now() - dt.timedelta(days=1)
        key = month_key(first)
        snap = session.get(ReportSnapshot, (department_id, key)) if finished else None
        if snap is not None:
            kept = _from_snapshot(snap.data)
            if kept is not None:
                return kept
        figures, stats = month_figures(session, department_id, first, self._tz, self._index)
        if snap is not None:  # an older format: replaced by the figures computed now
            snap.data = _to_snapshot(figures, stats)
            snap.computed_at = self._clock.now()
        elif finished:
            try:
                with session.begin_nested():
                    session.add(ReportSnapshot(department_id=department_id, month=key,
                                               data=_to_snapshot(figures, stats),
                                               computed_at=self._clock.now()))
            except IntegrityError:
                pass  # another request stored the same month first
        return figures, stats

    def store_finished_months(self, session: Session, department_id: int,
                              months: int = TREND_MONTHS) -> int:
        """Make sure the last `months` finished months have snapshots (a nightly job, so no
        page pays for them). Returns how many months are now kept."""
        today = self._clock.now().date().replace(day=1)
        first = previous_month(today)
        kept = 0
        for _ in range(months):
            _, end = month_range(first, self._tz)
            if end <= self._clock.now() - dt.timedelta(days=1):
                self._month(session, department_id, first)
                kept += 1
            first = previous_month(first)
        return kept

    def monthly(self, session: Session, who: Principal, department_id: int, first: dt.date
                ) -> MonthlyReport:
        """Raises NotFound for a department outside the caller's scope."""
        dept = session.execute(select(Department).where(
            Department.id == department_id, who.scope(Department.id))).scalar_one_or_none()
        if dept is None:
            raise NotFound(f"department {department_id} not found")
        figures, stats = self._month(session, dept.id, first)
        months = [first]
        for _ in range(TREND_MONTHS - 1):
            months.insert(0, previous_month(months[0]))
        trend = [self._month(session, dept.id, m)[0] for m in months[:-1]] + [figures]
        shown = [q for q in stats if not q.suppressed and q.kind == QuestionKind.SCALE.value]
        worst = sorted(shown, key=lambda q: (q.mean or 0.0, q.key))[:WORST_ITEMS]
        return MonthlyReport(dept.id, dept.code, dept.name, dept.name_en, month_key(first),
                             figures, stats, tuple(trend), tuple(worst),
                             ranking=self._ranking(session, who, first))

    def _ranking(self, session: Session, who: Principal, first: dt.date
                 ) -> tuple[DepartmentRank, ...]:
        """The month of every department, for a reader who sees them all (a manager's
        grants never make a department's figures visible to them here)."""
        if who.departments is not None:
            return ()
        rows = [DepartmentRank(d.id, d.code, d.name, d.name_en,
                               self._month(session, d.id, first)[0])
                for d in session.execute(select(Department).order_by(Department.code))
                .scalars()]
        return tuple(sorted(rows, key=lambda r: (r.figures.response_rate is None,
                                                 -(r.figures.response_rate or 0.0), r.code)))
