"""The monthly report against an independent recomputation from the raw rows (SQLite and
PostgreSQL).

A month is seeded the way the engine stores it (yes/no answers as "yes"/"no", a 1-5 item and
a 0-10 pain score, a choice, a number, spoken answers some of which await review, a partial
call, an unanswered question, a late answer, a call that was never answered, a cancelled
task, another department, the next month). The test then
recomputes every figure with the plainest query there is (one row per answer, no grouping
in SQL) and the textbook formulas written out here, and compares figure by figure.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import statistics
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from console.questions import IndexItem
from console.reports import month_figures
from core.enums import (
    AnswerSource,
    AttemptStatus,
    DialOutcome,
    EncounterType,
    QuestionKind,
    ScriptOutcome,
    Sex,
    TaskStatus,
)
from core.store.db import Database
from core.store.models import (
    Answer,
    CallAttempt,
    Department,
    Encounter,
    FollowupTask,
    Patient,
)

TZ = "Asia/Shanghai"
# a template's index: the 1-5 item and one yes/no item (the pain score stays out of it)
INDEX = (IndexItem("cardiology-post-discharge", "overall", 1, 5),
         IndexItem("cardiology-post-discharge", "meds", 0, 1, yes_no=True))
MONTH = dt.date(2026, 11, 1)
# two-sided 95% Student t quantiles from a printed table, for the sample sizes seeded here
T95 = {9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131,
       16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074,
       23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045,
       30: 2.042, 31: 2.040, 32: 2.037, 33: 2.035, 34: 2.032, 35: 2.030}


def _seed(db: Database) -> tuple[int, int]:
    """Returns (CARD's id, how many calls were seeded). Deterministic."""
    rng = random.Random(7)
    made = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
    with db.session() as s:
        card = Department(code="CARD", name="心内科", name_en="Cardiology")
        other = Department(code="ONC", name="肿瘤科", name_en="Oncology")
        s.add_all([card, other])
        s.flush()
        calls = 0
        for i in range(40):
            dept = card if i % 8 else other
            p = Patient(his_id=f"H{i}", mrn=f"MRN{i:04d}", name=f"患者{i}", sex=Sex.MALE,
                        birth_date=dt.date(1950, 1, 1), phone=f"+86138001380{i:02d}",
                        language="zh-CN", timezone=TZ, content_hash="x", updated_at=made)
            s.add(p)
            s.flush()
            e = Encounter(his_id=f"E{i}", patient_id=p.id, type=EncounterType.INPATIENT,
                          department_id=dept.id, discharge_at=made - dt.timedelta(days=40),
                          diagnoses=[], procedures=[], content_hash="y", updated_at=made)
            s.add(e)
            s.flush()
            # most due in November; a few on the last day of October local time and on the
            # first of December, which belong to other months
            due = MONTH + dt.timedelta(days=i % 30) if i % 13 else dt.date(2026, 12, 1)
            status = (TaskStatus.CANCELLED if i % 11 == 0 else TaskStatus.FAILED if i % 7 == 0
                      else TaskStatus.PENDING if i % 9 == 0 else TaskStatus.DONE)
            start = dt.datetime.combine(due, dt.time(1, 0), dt.UTC)
            t = FollowupTask(plan_key=f"k{i}", patient_id=p.id, encounter_id=e.id,
                             department_id=dept.id, rule_id="r", offset_days=3,
                             script_id="cardiology-post-discharge", script_version=1,
                             call_scripts=["cardiology-post-discharge"], due_date=due,
                             calling_window="09:00-20:00", timezone=TZ, window_start=start,
                             window_end=start + dt.timedelta(hours=11), status=status,
                             attempts=1, max_attempts=3, next_attempt_at=start,
                             created_at=made, updated_at=made)
            s.add(t)
            s.flush()
            if status is TaskStatus.CANCELLED:
                continue
            # the call: 00:30 local on the 1st of the month is 16:30 UTC the day before
            at = dt.datetime.combine(due, dt.time(0, 30), ZoneInfo(TZ)).astimezone(dt.UTC) \
                + dt.timedelta(hours=i % 20)
            dial = DialOutcome.NO_ANSWER if i % 10 == 3 else DialOutcome.ANSWERED
            partial = i % 6 == 5
            a = CallAttempt(task_id=t.id, patient_id=p.id, department_id=dept.id, number=1,
                            status=AttemptStatus.ENDED, backend="sim", phone=p.phone or "",
                            dialled=True, dial_outcome=dial,
                            script_outcome=None if dial is not DialOutcome.ANSWERED else
                            ScriptOutcome.PARTIAL if partial else ScriptOutcome.COMPLETED,
                            created_at=at, answered_at=at if dial is DialOutcome.ANSWERED
                            else None, ended_at=at + dt.timedelta(minutes=3))
            s.add(a)
            s.flush()
            calls += 1
            if dial is not DialOutcome.ANSWERED:
                continue

            def answer(qid: str, kind: QuestionKind, value: str | None,
                       source: AnswerSource = AnswerSource.KEYPAD, late: bool = False,
                       review: bool = False, a: CallAttempt = a, t: FollowupTask = t) -> None:
                s.add(Answer(attempt_id=a.id, task_id=t.id,
                             script_id="cardiology-post-discharge", script_version=1,
                             question_id=qid, kind=kind, source=source, value=value,
                             needs_review=review,
                             # a late answer (a transcript filed after the month ended)
                             # still counts in the month of its call
                             created_at=a.created_at + (dt.timedelta(days=3) if late
                                                        else dt.timedelta(minutes=1))))

            answer("meds", QuestionKind.YES_NO, rng.choice(["yes", "yes", "yes", "no"]))
            answer("chest_pain", QuestionKind.YES_NO, rng.choice(["yes", "no", "no", "no"]))
            answer("overall", QuestionKind.SCALE, str(rng.randint(1, 5)))
            answer("wound", QuestionKind.CHOICE,
                   rng.choice(["healing", "healing", "healing", "red_swollen", "leaking"]))
            if not partial:  # a partial call stops before the pain score
                answer("pain", QuestionKind.SCALE, str(rng.randint(0, 10)), late=i % 5 == 0)
                answer("sbp", QuestionKind.NUMBER, str(rng.randint(95, 185)))
                answer("breathless", QuestionKind.YES_NO, None, source=AnswerSource.NONE)
                # a spoken answer stores no value (the clip and transcript are the answer)
                answer("feeling", QuestionKind.VOICE, None, source=AnswerSource.VOICE,
                       review=i % 3 == 0)
    return card.id, calls


def _wilson(k: int, n: int) -> tuple[float, float]:
    z = 1.959964
    p = k / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n), (centre + spread) / (1 + z * z / n)


def _quartile(ordered: list[int], p: float) -> float:
    """The textbook quantile: position (n - 1) * p in the sorted list, interpolated."""
    pos = (len(ordered) - 1) * p
    below = math.floor(pos)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (pos - below)


def test_report_matches_an_independent_recomputation(db: Database) -> None:
    card, _ = _seed(db)
    start = dt.datetime(2026, 11, 1, tzinfo=ZoneInfo(TZ)).astimezone(dt.UTC)
    end = dt.datetime(2026, 12, 1, tzinfo=ZoneInfo(TZ)).astimezone(dt.UTC)
    with db.session() as s:
        figures, stats = month_figures(s, card, MONTH, TZ, INDEX)
        tasks = s.execute(select(FollowupTask.status).where(
            FollowupTask.department_id == card, FollowupTask.due_date >= MONTH,
            FollowupTask.due_date < dt.date(2026, 12, 1))).scalars().all()
        rows = s.execute(
            select(Answer.question_id, Answer.kind, Answer.source, Answer.value,
                   Answer.needs_review, CallAttempt.created_at, CallAttempt.dial_outcome,
                   CallAttempt.department_id, Answer.attempt_id)
            .join(CallAttempt, CallAttempt.id == Answer.attempt_id)).all()

    eligible = [x for x in tasks if x not in (TaskStatus.CANCELLED, TaskStatus.MERGED)]
    assert figures.eligible == len(eligible)
    assert figures.responded == eligible.count(TaskStatus.DONE)
    assert figures.failed == eligible.count(TaskStatus.FAILED)
    assert figures.still_open == eligible.count(TaskStatus.PENDING)
    assert figures.response_rate == pytest.approx(
        eligible.count(TaskStatus.DONE) / len(eligible))

    values: dict[str, list[str]] = {}
    kinds: dict[str, QuestionKind] = {}
    spoken: list[bool] = []  # the voice question's answers: awaiting review or not
    scored: dict[int, list[float]] = {}  # call -> its index items on 0-100, by hand
    for qid, kind, source, value, review, created, dial, dept, call in rows:
        created = created if created.tzinfo else created.replace(tzinfo=dt.UTC)
        if dept != card or not start <= created < end or dial is not DialOutcome.ANSWERED:
            continue
        if qid == "overall" and value is not None:  # 1-5 -> 0, 25, 50, 75, 100
            scored.setdefault(call, []).append((int(value) - 1) * 25.0)
        if qid == "meds" and value in ("yes", "no"):
            scored.setdefault(call, []).append(100.0 if value == "yes" else 0.0)
        if kind is QuestionKind.VOICE and source is AnswerSource.VOICE:
            spoken.append(review)
            continue
        if source is AnswerSource.NONE or value is None:
            continue
        values.setdefault(qid, []).append(value)
        kinds[qid] = kind
    by_id = {q.question_id: q for q in stats}
    assert set(by_id) == {*values, "feeling"}, "the report's questions are the answered ones"
    assert figures.answers == sum(len(v) for q, v in values.items()
                                  if kinds[q] in (QuestionKind.YES_NO, QuestionKind.SCALE))

    # voice: how many spoke, how many of those still wait for a person's review
    feeling = by_id["feeling"]
    assert (feeling.n, feeling.pending_review) == (len(spoken), sum(spoken))
    assert 0 < sum(spoken) < len(spoken)
    # choice: the answers per option, most chosen first
    wound = values.pop("wound")
    tally: dict[str, int] = {}
    for value in wound:
        tally[value] = tally.get(value, 0) + 1
    assert dict(by_id["wound"].counts) == tally and len(tally) == 3
    assert [c for _, c in by_id["wound"].counts] == sorted(tally.values(), reverse=True)
    assert by_id["wound"].n == len(wound)
    # number: median and quartiles of the typed values, never a mean
    sbp = sorted(int(v) for v in values.pop("sbp"))
    q = by_id["sbp"]
    assert (q.n, q.mean) == (len(sbp), None)
    assert (q.q1, q.median, q.q3) == (pytest.approx(_quartile(sbp, 0.25)),
                                      pytest.approx(_quartile(sbp, 0.5)),
                                      pytest.approx(_quartile(sbp, 0.75)))
    for qid, given in values.items():
        q = by_id[qid]
        assert q.n == len(given), qid
        assert not q.suppressed, qid
        assert q.mean is not None and q.low is not None and q.high is not None
        if kinds[qid] is QuestionKind.YES_NO:
            yes = given.count("yes")
            assert 0 < yes < len(given), f"{qid}: the seed should hold both answers"
            assert q.mean == pytest.approx(yes / len(given)), qid
            low, high = _wilson(yes, len(given))
            assert (q.low, q.high) == (pytest.approx(low, abs=1e-4),
                                       pytest.approx(high, abs=1e-4)), qid
        else:
            scores = [float(v) for v in given]
            mean = statistics.fmean(scores)
            half = T95[len(scores) - 1] * statistics.stdev(scores) / math.sqrt(len(scores))
            assert q.mean == pytest.approx(mean), qid
            assert q.low == pytest.approx(mean - half, abs=0.05), qid
            assert q.high == pytest.approx(mean + half, abs=0.05), qid
    # the 0-10 pain score is reported on its own, never pooled with the 1-5 item
    assert by_id["pain"].mean == pytest.approx(statistics.fmean(float(v)
                                                                for v in values["pain"]))
    assert not hasattr(figures, "mean_score")
    # the satisfaction index: each call's mean of its index items, averaged over calls
    per_call = [statistics.fmean(v) for v in scored.values()]
    index = statistics.fmean(per_call)
    half = T95[len(per_call) - 1] * statistics.stdev(per_call) / math.sqrt(len(per_call))
    assert figures.satisfaction_calls == len(per_call)
    assert figures.satisfaction == pytest.approx(index)
    assert figures.satisfaction_low == pytest.approx(index - half, abs=0.5)
    assert figures.satisfaction_high == pytest.approx(index + half, abs=0.5)
