"""An answering machine is left the hospital's call-back message only when the script
leaves messages, the patient agreed to them and the hospital has a call-back number; the
message holds the hospital and that number, nothing else; the attempt says it was left.
On SQLite and PostgreSQL (the store's flag and the attempt's column)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from core.audit import AuditLog
from core.calling_window import CallingRules
from core.clock import FakeClock
from core.enums import AmdStatus, DialOutcome
from core.store.db import Database
from core.store.models import CallAttempt
from dialer.answering_machine import AmdVerdict
from dialer.attempt_log import AttemptLog
from dialer.call_handler import IvrCallHandler
from dialer.call_planner import CallPlanner, PlannerSettings, ScriptLibrary
from dialer.call_summary import summarise_report
from dialer.claims import TaskClaimer
from dialer.retry_policy import RetryPolicy
from dialer.telephony import CallReport
from ivr.script_loader import load_script
from ivr.script_model import MachineAction, Script
from ivr.testing import ScriptedChannel
from recordings.store import RecordingStore
from tests.audit_key import TEST_AUDIT_KEY
from tests.contract.call_support import SCRIPT_S, TextPrompts
from tests.contract.test_claims import NOW, TZ, _seed

CALLBACK = "0571-8888 1234"
MACHINE = AmdVerdict(AmdStatus.MACHINE, "LONGGREETING-3000-3000")


def _script(tmp_path: Path, on_machine: MachineAction) -> Script:
    path = tmp_path / "scripts" / "s" / "v1" / "zh-CN.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"on_machine: {on_machine.value}\n" + SCRIPT_S, encoding="utf-8")
    return load_script(path)


async def _machine_call(db: Database, tmp_path: Path, *, on_machine: MachineAction,
                        agreed: bool, callback: str = CALLBACK
                        ) -> tuple[ScriptedChannel, TextPrompts, CallAttempt]:
    _seed(db, [{"voicemail_ok": agreed, "name": "王芳"}],
          [{"calling_window": "00:00-24:00"}])
    clock = FakeClock(NOW)
    attempts = AttemptLog(db, RetryPolicy(), RecordingStore(
        tmp_path / "rec", clock, AuditLog(clock, TEST_AUDIT_KEY)), "sim")
    prompts = TextPrompts(tmp_path / "silence.wav")
    planner = CallPlanner(db, attempts, ScriptLibrary([_script(tmp_path, on_machine)], "zh-CN"),
                          prompts, PlannerSettings(
                              hospital="示范医院", hospital_en="Demo Hospital",
                              hospital_language="zh-CN", emergency_number="120",
                              nurse_queue="n", agent_queue="a", nurse_hours="00:00-24:00",
                              hospital_tz=TZ, callback_number=callback))
    claimer = TaskClaimer(db, "d1", dt.timedelta(minutes=5),
                          CallingRules.from_settings("00:00-24:00", []), TZ)
    [task] = claimer.claim(NOW, 1)
    attempt_id = attempts.begin(task, NOW)
    assert attempt_id is not None
    plan = await planner.plan(planner.prepare(task, NOW), attempt_id)
    plan.amd = MACHINE
    channel = ScriptedChannel([], tmp_path)
    handler = IvrCallHandler(db, attempts, prompts, None, clock)
    assert await handler.run(plan, channel) is None  # no script ran
    report = CallReport(attempt_id, DialOutcome.ANSWERED, True, answered_at=NOW)
    attempts.finish(attempt_id, summarise_report(report, plan), NOW)
    with db.session() as s:
        row = s.execute(select(CallAttempt)).scalar_one()
        s.expunge(row)
    return channel, prompts, row


async def test_a_patient_who_agreed_is_left_the_callback_message_after_the_beep(
        db: Database, tmp_path: Path) -> None:
    channel, _, attempt = await _machine_call(
        db, tmp_path, on_machine=MachineAction.LEAVE_MESSAGE, agreed=True)
    played = [e for e in channel.events if e[0] in ("play", "wait_for_silence")]
    assert played == [("wait_for_silence", "1.5"), ("play", "s/msg.voicemail")]
    [message] = [p.text for p in channel.prompts]
    assert "示范医院" in message and CALLBACK in message
    assert "王芳" not in message and "心内科" not in message
    for question in ("您好些了吗", "还痛吗"):
        assert question not in message
    assert channel.events[-1] == ("hangup", "us")
    assert (attempt.dial_outcome, attempt.voicemail_left) == (DialOutcome.MACHINE, True)


@pytest.mark.parametrize(("on_machine", "agreed", "callback"), [
    (MachineAction.LEAVE_MESSAGE, False, CALLBACK),  # the patient did not agree
    (MachineAction.HANG_UP, True, CALLBACK),  # the script leaves no messages
    (MachineAction.LEAVE_MESSAGE, True, ""),  # no number to call back
], ids=["not-agreed", "script-hangs-up", "no-callback-number"])
async def test_otherwise_a_machine_hears_nothing(
        db: Database, tmp_path: Path, on_machine: MachineAction, agreed: bool,
        callback: str) -> None:
    channel, prompts, attempt = await _machine_call(
        db, tmp_path, on_machine=on_machine, agreed=agreed, callback=callback)
    assert channel.prompts == [] and channel.events == [("hangup", "us")]
    assert not any("8888" in text for text in prompts.rendered)  # never even rendered
    assert (attempt.dial_outcome, attempt.voicemail_left) == (DialOutcome.MACHINE, False)


def test_a_script_with_an_unknown_machine_action_is_refused(tmp_path: Path) -> None:
    from core.errors import FileValidationError

    path = tmp_path / "s" / "v1" / "zh-CN.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("on_machine: sing\n" + SCRIPT_S, encoding="utf-8")
    with pytest.raises(FileValidationError) as err:
        load_script(path)
    assert "on_machine" in str(err.value) and "leave_message" in str(err.value)
