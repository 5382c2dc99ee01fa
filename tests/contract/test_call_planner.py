"""The call plan is ready before the originate: the greeting rendered, names and titles in
the locale the call speaks (not the patient's record), and nothing left to ask means no
call."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import update

from core.audit import AuditLog
from core.clock import FakeClock
from core.enums import AnswerSource, QuestionKind, Sex
from core.store.db import Database
from core.store.models import Department
from dialer.attempt_log import AttemptLog
from dialer.call_planner import CallPlanner, PlannerSettings, ScriptLibrary
from dialer.claims import TaskClaimer
from dialer.retry_policy import RetryPolicy
from ivr.results import Answer
from ivr.script_loader import load_script
from recordings.store import RecordingStore
from tests.audit_key import TEST_AUDIT_KEY
from tests.contract.call_support import SCRIPT_S, TextPrompts, script_s
from tests.contract.test_claims import NOW, RULES, TZ, _seed


def _planner(db: Database, tmp_path: Path) -> tuple[CallPlanner, AttemptLog, TextPrompts]:
    clock = FakeClock(NOW)
    log = AttemptLog(db, RetryPolicy(), RecordingStore(tmp_path / "rec", clock,
                                                       AuditLog(clock, TEST_AUDIT_KEY)), "sim")
    ko = tmp_path / "scripts" / "s" / "v1" / "ko-KR.yaml"
    ko.parent.mkdir(parents=True, exist_ok=True)
    zh_greeting = next(line for line in SCRIPT_S.splitlines() if line.startswith("greeting:"))
    ko.write_text(SCRIPT_S.replace("locale: zh-CN", "locale: ko-KR").replace(
        zh_greeting, 'greeting: "안녕하세요, {{ patient.name }} {{ patient.title }}. '
        '{{ hospital }} {{ department }}입니다."'), encoding="utf-8")
    scripts = [script_s(tmp_path / "scripts"), load_script(ko)]
    prompts = TextPrompts(tmp_path / "silence.wav")
    return CallPlanner(db, log, ScriptLibrary(scripts, "zh-CN"), prompts, PlannerSettings(
        hospital="示范医院", hospital_en="Demo Hospital", hospital_language="zh-CN",
        emergency_number="120", nurse_queue="followup-nurses", agent_queue="followup-agents",
        nurse_hours="08:00-20:00", hospital_tz="Asia/Shanghai")), log, prompts


async def test_names_and_titles_follow_the_locale_the_call_speaks(db: Database,
                                                                 tmp_path: Path) -> None:
    _seed(db, [{"language": "ko-KR", "name": "김민수", "sex": Sex.MALE}, {}],
          [{"patient_id": 1}, {"patient_id": 2, "offset_days": 2}])
    with db.session() as s:
        s.execute(update(Department).values(name_en="Cardiology"))
    planner, log, prompts = _planner(db, tmp_path)
    tasks = sorted(TaskClaimer(db, "d1", dt.timedelta(minutes=5), RULES, TZ).claim(NOW, 5),
                   key=lambda t: t.patient_id)
    openings, greetings = [], []
    for task in tasks:
        attempt = log.begin(task, NOW)
        assert attempt is not None
        plan = await planner.plan(planner.prepare(task, NOW), attempt)
        # rendered before anything is dialled: the opening (played on answer) names the
        # hospital only; the greeting waits for the identity check
        assert plan.opening is not None and plan.greeting is not None
        openings.append(plan.opening.text)
        greetings.append(plan.greeting.text)
        assert plan.context.channel_variables["FOLLOWUP_ATTEMPT"] == str(plan.attempt_id)
    assert openings == ["안녕하세요, Demo Hospital입니다.", "您好，这里是示范医院。"]
    assert greetings == ["안녕하세요, 김민수 님. Demo Hospital Cardiology입니다.",
                         "您好，病人2女士，这里是示范医院心内科。"]
    assert prompts.rendered == [openings[0], greetings[0], openings[1], greetings[1]]


async def test_a_call_with_every_answer_already_given_is_not_placed(db: Database,
                                                                   tmp_path: Path) -> None:
    _seed(db, [{}], [{"patient_id": 1, "attempts": 1}])
    planner, log, _ = _planner(db, tmp_path)
    claimer = TaskClaimer(db, "d1", dt.timedelta(minutes=5), RULES, TZ)
    task = claimer.claim(NOW, 1)[0]
    attempt = log.begin(task, NOW)
    assert attempt is not None
    log.save_answer(attempt, Answer("s", 1, "ok", QuestionKind.YES_NO, AnswerSource.KEYPAD,
                                    "yes"), NOW)
    assert not planner.prepare(task, NOW).nothing_left  # "pain" is still to ask
    log.save_answer(attempt, Answer("s", 1, "pain", QuestionKind.YES_NO,
                                    AnswerSource.KEYPAD, "no"), NOW)
    assert planner.prepare(task, NOW).nothing_left
