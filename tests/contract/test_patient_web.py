"""The patient's web questionnaire over HTTP, on SQLite and PostgreSQL: a link opens once,
the birth year comes before any health question, the same script and red flags as a call,
answers stored with source web and counted by the monthly report, opt-out, rate limit."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Float, cast, func, select

from console.reports import month_figures
from core.clock import FakeClock
from core.enums import (
    AnswerSource,
    AttemptStatus,
    DialOutcome,
    QuestionKind,
    ScriptOutcome,
    Severity,
    TaskStatus,
    TicketReason,
    TicketStatus,
)
from core.store.db import Database
from core.store.models import (
    Answer,
    AuditEntry,
    CallAttempt,
    FollowupTask,
    Patient,
    Ticket,
    WebLink,
)
from core.web_links import new_token
from tests.contract.patient_web_support import BORN, KEY, NAME, Seeded, build, seed
from tests.unit.console.server import Client, Reply, serving

# every health question of cardiology-post-discharge (zh-CN), as a page would show it
HEALTH = ("胸痛", "气短", "脚踝", "收缩压", "服药", "意见")


class Walk:
    """One patient's browser over the running app."""

    def __init__(self, base: str, seeded: Seeded) -> None:
        self.client = Client(base)
        self.token = seeded.token
        self.last: Reply | None = None

    def open(self) -> Reply:
        self.last = self.client.get(f"/q/{self.token}")
        return self.last

    def year(self, year: str) -> Reply:
        self.last = self.client.post(f"/q/{self.token}/identity", {"year": year})
        return self.last

    def asked(self) -> str:
        assert self.last is not None
        found = re.search(r'name="q" value="([^"]+)"', self.last.text)
        return found.group(1) if found else ""

    def answer(self, value: str) -> Reply:
        assert self.last is not None
        fields = dict(re.findall(r'name="(s|v|l|q)" value="([^"]*)"', self.last.text))
        self.last = self.client.post(f"/q/{self.token}/answer", {**fields, "answer": value})
        return self.last


@pytest.fixture
def site(db: Database, clock: FakeClock) -> Iterator[tuple[str, list[Seeded]]]:
    seeded = seed(db, clock, patients=2)
    app, _ = build(db, clock)
    with serving(app) as base:
        yield base, seeded


def _header(reply: Reply, name: str) -> str:
    return next(v for k, v in reply.headers.items() if k.lower() == name)


def _tickets(db: Database) -> list[Ticket]:
    with db.session() as s:
        return list(s.execute(select(Ticket).order_by(Ticket.id)).scalars())


def _link(db: Database, link_id: int) -> WebLink:
    with db.session() as s:
        link = s.get(WebLink, link_id)
        assert link is not None
        return link


def _no_health(text: str) -> None:
    assert not any(word in text for word in HEALTH), text
    assert NAME not in text  # and nothing about the patient


def test_a_questionnaire_completed_through_the_link(db: Database, clock: FakeClock,
                                                    site: tuple[str, list[Seeded]]) -> None:
    base, (first, _) = site
    walk = Walk(base, first)
    page = walk.open()
    assert page.status == 200 and 'id="identity"' in page.text
    _no_health(page.text)
    assert _header(page, "referrer-policy") == "no-referrer"
    assert _header(page, "cache-control") == "no-store"
    page = walk.year(str(BORN))
    assert page.status == 200 and walk.asked() == "chest_pain"
    assert "出院以后，您有没有胸痛或胸闷？" in page.text and "请按" not in page.text
    assert NAME in page.text  # the greeting, after the check
    for qid, value in (("chest_pain", "2"), ("breathless", "2"), ("sbp", "128"),
                       ("meds", "1")):
        assert walk.asked() == qid
        assert walk.answer(value).status == 200
    assert walk.asked() == "comment"  # `swelling` skipped: its `when` is false
    assert 'type="number"' not in walk.last.text and "<textarea" in walk.last.text  # type: ignore[union-attr]
    done = walk.answer("最近睡得不太好")
    assert done.status == 200 and 'id="done"' in done.text
    assert "问卷到此结束" in done.text
    with db.session() as s:
        answers = {a.question_id: a for a in s.execute(select(Answer)).scalars()}
        attempt = s.execute(select(CallAttempt)).scalar_one()
        task = s.get(FollowupTask, first.task_id)
        link = s.get(WebLink, first.link_id)
        assert task is not None and link is not None
        assert sorted(answers) == ["breathless", "chest_pain", "comment", "meds", "sbp"]
        assert {a.source for a in answers.values()} == {AnswerSource.WEB}
        assert answers["sbp"].value == "128" and answers["chest_pain"].value == "no"
        assert answers["comment"].transcript == "最近睡得不太好"
        assert all(a.attempt_id == attempt.id for a in answers.values())
        assert (attempt.backend, attempt.dialled, attempt.dial_outcome,
                attempt.script_outcome, attempt.status) == (
            "web", False, DialOutcome.ANSWERED, ScriptOutcome.COMPLETED, AttemptStatus.ENDED)
        assert attempt.phone == "+8613800000001"
        assert link.attempt_id == attempt.id and link.used_at == clock.now()
        assert link.verified_at == clock.now()
        assert (task.status, task.outcome) == (TaskStatus.DONE, "completed")
        assert task.attempts == 3  # a web session is not a dialled attempt
    assert _tickets(db) == []
    again = walk.open()
    assert again.status == 410 and "问卷已经填写过了" in again.text
    _no_health(again.text)
    # the link is refused after, even for a late answer from the old page
    late = walk.client.post(f"/q/{first.token}/answer", {"s": "cardiology-post-discharge",
                                                         "v": "1", "l": "zh-CN",
                                                         "q": "meds", "answer": "2"})
    assert late.status == 410
    with db.session() as s:
        assert s.execute(select(func.count()).select_from(Answer)).scalar_one() == 5


def test_web_answers_are_counted_by_the_monthly_report(db: Database, clock: FakeClock,
                                                       site: tuple[str, list[Seeded]]) -> None:
    base, (first, _) = site
    walk = Walk(base, first)
    walk.open()
    walk.year(str(BORN))
    for value in ("2", "1", "1", "150", "1", "还好"):  # breathless yes: swelling asked
        walk.answer(value)
    with db.session() as s:
        figures, stats = month_figures(s, 1, dt.date(2026, 3, 1), "Asia/Shanghai")
        # the same figure by a plain query: answered attempts' closed answers
        expected = s.execute(
            select(func.count()).select_from(Answer)
            .join(CallAttempt, CallAttempt.id == Answer.attempt_id)
            .where(CallAttempt.department_id == 1,
                   CallAttempt.dial_outcome == DialOutcome.ANSWERED,
                   Answer.kind.in_([QuestionKind.YES_NO, QuestionKind.SCALE]),
                   Answer.source != AnswerSource.NONE, Answer.value.is_not(None))).scalar_one()
        yes = s.execute(select(func.count()).select_from(Answer).where(
            Answer.question_id == "breathless", Answer.value == "yes")).scalar_one()
        assert s.execute(select(func.sum(cast(Answer.value, Float))).where(
            Answer.question_id == "sbp")).scalar_one() == 150
    assert expected == 4 and figures.answers == expected  # chest_pain, breathless, swelling, meds
    assert figures.responded == 1 and yes == 1
    assert {q.question_id for q in stats} >= {"chest_pain", "breathless", "swelling", "meds"}


def test_a_red_flag_on_the_web_raises_the_same_ticket_as_a_call(
        db: Database, site: tuple[str, list[Seeded]]) -> None:
    base, (first, _) = site
    walk = Walk(base, first)
    walk.open()
    walk.year(str(BORN))
    page = walk.answer("1")  # chest pain: a high red flag (transfer by phone; ticket here)
    assert page.status == 200 and walk.asked() == "breathless"
    assert 'class="safety"' in page.text
    assert "如果胸痛加重或持续不缓解，请立即拨打120。" in page.text
    # the same answer again (a double tap on the old page) raises no second ticket
    walk.client.post(f"/q/{first.token}/answer", {"s": "cardiology-post-discharge", "v": "1",
                                                  "l": "zh-CN", "q": "chest_pain",
                                                  "answer": "1"})
    [ticket] = _tickets(db)
    assert (ticket.reason, ticket.severity, ticket.summary, ticket.department_id,
            ticket.task_id) == (TicketReason.RED_FLAG, Severity.HIGH, "出院后胸痛或胸闷", 1,
                                first.task_id)
    assert ticket.due_at == ticket.created_at + dt.timedelta(hours=4)
    with db.session() as s:
        attempt = s.execute(select(CallAttempt)).scalar_one()
        answer = s.execute(select(Answer)).scalar_one()
        assert ticket.attempt_id == attempt.id
        assert (answer.red_flag, answer.source) == (Severity.HIGH, AnswerSource.WEB)
    for value in ("2", "200", "1", "好"):  # sbp 200: a second red flag (high)
        walk.answer(value)
    assert 'id="done"' in walk.last.text  # type: ignore[union-attr]
    summaries = [t.summary for t in _tickets(db)]
    assert summaries == ["出院后胸痛或胸闷", "收缩压≥180"]
    with db.session() as s:
        attempt = s.execute(select(CallAttempt)).scalar_one()
        assert attempt.script_outcome is ScriptOutcome.ESCALATED
        task = s.get(FollowupTask, first.task_id)
        assert task is not None and task.status is TaskStatus.DONE


def test_three_wrong_birth_years_lock_the_link_and_raise_a_ticket(
        db: Database, clock: FakeClock, site: tuple[str, list[Seeded]]) -> None:
    base, (first, _) = site
    walk = Walk(base, first)
    walk.open()
    page = walk.year("1959")
    assert page.status == 422 and "您还可以再试 2 次" in page.text
    _no_health(page.text)
    assert walk.year("19x9").status == 422  # not a year: not counted
    assert _link(db, first.link_id).failures == 1
    # a restart loses nothing: a second app over the same store counts on
    app2, _ = build(db, clock)
    with serving(app2) as base2:
        walk2 = Walk(base2, first)
        walk2.open()
        page = walk2.year("1960")
    assert "您还可以再试 1 次" in page.text
    page = walk.year("1961")
    assert page.status == 410 and "链接已锁定" in page.text
    _no_health(page.text)
    link = _link(db, first.link_id)
    assert link.failures == 3 and link.locked_at == clock.now() and link.verified_at is None
    [ticket] = _tickets(db)
    assert (ticket.reason, ticket.department_id, ticket.task_id, ticket.patient_id) == (
        TicketReason.IDENTITY_FAILED, 1, first.task_id, first.patient_id)
    assert "3" in ticket.summary
    # the right year now opens nothing
    page = walk.year(str(BORN))
    assert page.status == 410
    _no_health(walk.open().text)
    with db.session() as s:
        assert s.execute(select(func.count()).select_from(Answer)).scalar_one() == 0
        assert s.execute(select(func.count()).select_from(CallAttempt)).scalar_one() == 0


def test_expired_unknown_and_forged_links_are_refused(db: Database, clock: FakeClock,
                                                      site: tuple[str, list[Seeded]]) -> None:
    base, (first, _) = site
    clock.advance(dt.timedelta(days=3))
    page = Walk(base, first).open()
    assert page.status == 410 and "链接已过期" in page.text
    _no_health(page.text)
    assert Walk(base, first).year(str(BORN)).status in (403, 410)
    never_issued = Client(base).get(f"/q/{new_token(KEY)}")
    forged = Client(base).get(f"/q/{new_token(b'another-key-0123456789-0123456789')}")
    garbage = Client(base).get("/q/hello")
    for reply in (never_issued, forged, garbage):
        assert reply.status == 404 and "链接无效" in reply.text
        _no_health(reply.text)
        assert "optout" not in reply.text


def test_a_task_answered_by_phone_meanwhile_closes_the_link(
        db: Database, site: tuple[str, list[Seeded]]) -> None:
    base, (first, _) = site
    with db.session() as s:
        task = s.get(FollowupTask, first.task_id)
        assert task is not None
        task.status = TaskStatus.DONE
    page = Walk(base, first).open()
    assert page.status == 410 and "这次随访已经结束" in page.text


def test_an_out_of_range_number_is_refused_at_its_field(
        db: Database, site: tuple[str, list[Seeded]]) -> None:
    base, (first, _) = site
    walk = Walk(base, first)
    walk.open()
    walk.year(str(BORN))
    walk.answer("2")
    page = walk.answer("2")
    assert walk.asked() == "sbp"
    assert 'min="60"' in page.text and 'max="260"' in page.text
    page = walk.answer("300")
    assert page.status == 422 and "请输入 60 到 260 之间的整数" in page.text
    assert walk.asked() == "sbp"
    with db.session() as s:
        assert s.execute(select(func.count()).select_from(Answer)
                         .where(Answer.question_id == "sbp")).scalar_one() == 0


def test_posts_need_the_csrf_proof_and_the_verified_browser(
        db: Database, site: tuple[str, list[Seeded]]) -> None:
    base, (first, _) = site
    walk = Walk(base, first)
    walk.open()
    bad = walk.client.post(f"/q/{first.token}/identity", {"year": str(BORN)}, csrf=False)
    assert bad.status == 403
    walk.client.csrf = "0" * 40
    assert walk.client.post(f"/q/{first.token}/identity", {"year": str(BORN)}).status == 403
    assert _link(db, first.link_id).verified_at is None
    walk.open()
    walk.year(str(BORN))
    # another browser with the same link (no cookie) must pass the check itself
    other = Walk(base, first)
    page = other.open()
    assert 'id="identity"' in page.text
    _no_health(page.text)
    posted = other.client.post(f"/q/{first.token}/answer", {
        "s": "cardiology-post-discharge", "v": "1", "l": "zh-CN", "q": "chest_pain",
        "answer": "2"})
    assert 'id="identity"' in posted.text
    with db.session() as s:
        assert s.execute(select(func.count()).select_from(Answer)).scalar_one() == 0


def test_opt_out_from_the_link(db: Database, site: tuple[str, list[Seeded]]) -> None:
    base, (first, second) = site
    walk = Walk(base, first)
    page = walk.open()
    assert f'href="/q/{first.token}/optout"' in page.text
    confirm = walk.client.get(f"/q/{first.token}/optout")
    assert confirm.status == 200 and "不再接收随访短信？" in confirm.text
    assert walk.client.post(f"/q/{first.token}/optout", csrf=False).status == 403
    done = walk.client.post(f"/q/{first.token}/optout")
    assert done.status == 200 and "已为您退订" in done.text
    with db.session() as s:
        patients = {p.id: p.opt_out_sms for p in s.execute(select(Patient)).scalars()}
        [entry] = s.execute(select(AuditEntry).where(
            AuditEntry.action == "patient.opt_out_sms")).scalars()
    assert patients == {first.patient_id: True, second.patient_id: False}
    assert (entry.actor, entry.object_type, entry.object_id) == (
        "patient:web", "patient", str(first.patient_id))
    assert Client(base).get(f"/q/{new_token(KEY)}/optout").status == 404


def test_requests_beyond_the_rate_are_refused(db: Database, clock: FakeClock) -> None:
    [first] = seed(db, clock)
    now = [0.0]
    app, _ = build(db, clock, per_minute=3, rate_clock=lambda: now[0])
    with serving(app) as base:
        walk = Walk(base, first)
        assert [walk.open().status for _ in range(3)] == [200, 200, 200]
        refused = walk.open()
        assert refused.status == 429 and "请求太频繁" in refused.text
        assert _header(refused, "retry-after") == "60"
        assert Client(base).get("/static/patient.css").status == 200  # not counted
        now[0] += 61
        assert walk.open().status == 200


def _tokens_in(records: list[Any], token: str) -> bool:
    return any(token in r.getMessage() for r in records)


def test_tokens_are_never_logged(db: Database, clock: FakeClock,
                                 caplog: pytest.LogCaptureFixture) -> None:
    [first] = seed(db, clock)
    app, _ = build(db, clock)
    with caplog.at_level("DEBUG"), serving(app) as base:
        walk = Walk(base, first)
        walk.open()
        walk.year("1900")
        walk.year(str(BORN))
        walk.answer("1")
    assert not _tokens_in(caplog.records, first.token)


def test_finishing_on_the_web_closes_the_not_reached_ticket(
        db: Database, clock: FakeClock, site: tuple[str, list[Seeded]]) -> None:
    base, (first, second) = site
    with db.session() as s:
        for seeded in (first, second):
            task = s.get_one(FollowupTask, seeded.task_id)
            s.add(Ticket(task_id=task.id, patient_id=task.patient_id,
                         department_id=task.department_id,
                         reason=TicketReason.ATTEMPTS_EXHAUSTED, priority=50,
                         status=TicketStatus.OPEN, summary="", created_at=clock.now()))
    walk = Walk(base, first)
    walk.open()
    walk.year(str(BORN))
    for value in ("2", "2", "128", "1", "好"):
        walk.answer(value)
    assert 'id="done"' in walk.last.text  # type: ignore[union-attr]
    mine, other = _tickets(db)
    assert (mine.status, mine.disposition, mine.closed_at) == (
        TicketStatus.CLOSED, "reached_completed_survey", clock.now())
    assert "网页问卷" in (mine.notes or "")
    assert other.status is TicketStatus.OPEN  # the other patient is still not reached
    with db.session() as s:
        closes = s.execute(select(AuditEntry).where(AuditEntry.action == "ticket.close")
                           ).scalars().all()
    assert [(e.actor, e.object_id) for e in closes] == [("patient:web", str(mine.id))]
