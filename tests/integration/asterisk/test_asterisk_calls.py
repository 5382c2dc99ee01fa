"""The engine against a real Asterisk: every dial outcome, keypad answers, hangups, the agent.

Each test seeds one due follow-up in a fresh SQLite store, starts the SIPp peers, runs the
engine's real dialer (AMI originate, FastAGI IVR, campaign, attempt log, recording store)
until nothing is due, and checks what the store says happened. The patient presses keys as
RFC 4733 events (`RtpPatient`); SIPp carries the SIP.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select, update

from core.enums import (
    AmdStatus,
    AttemptStatus,
    DialOutcome,
    RecordingKind,
    ScriptOutcome,
    Severity,
    TaskStatus,
    TicketReason,
)
from core.store.models import Answer, CallAttempt, FollowupTask, Patient, Recording, Ticket
from engine.app import App
from engine.dialing import recording_store
from ivr.prompts import PromptRenderer
from ivr.script_loader import load_scripts
from ivr.tts import build_prompt_audio
from tests.integration.asterisk import sipp
from tests.integration.asterisk.amd_samples import greeting
from tests.integration.asterisk.ami_observer import AmiObserver, Seen
from tests.integration.asterisk.baresip import Baresip, hang_up_after_answer
from tests.integration.asterisk.engine_run import (
    BIRTH_YEAR,
    SCRIPT,
    make_app,
    run_due_calls,
    seed_call,
)
from tests.integration.asterisk.rtp_patient import RtpPatient
from tests.integration.asterisk.server import (
    AGENT,
    AGENT_SECRET,
    CALLBACK_NUMBER,
    OBSERVER_SECRET,
    OBSERVER_USER,
    REPO,
    SCRIPTS,
    AsteriskServer,
    free_port,
)

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]


@dataclass
class Outcome:
    """What the store holds after the call, and what the peers saw (`why`, for messages)."""

    attempt: CallAttempt
    task: FollowupTask
    answers: dict[str, str | None]
    recordings: list[Recording]
    why: str = ""
    asterisk_saw: Seen | None = None  # Asterisk's own event times, from `AmiObserver`


@pytest.fixture
def app(asterisk: AsteriskServer, tmp_path: Path) -> Iterator[App]:
    application = make_app(asterisk, tmp_path / "store")
    seed_call(application.db, application.clock.now())
    yield application
    application.close()
    asterisk.hang_up_everything()


def _outcome(app: App) -> Outcome:
    with app.db.session() as s:
        attempts = s.execute(select(CallAttempt)).scalars().all()
        assert len(attempts) == 1, f"expected one attempt, got {len(attempts)}"
        task = s.execute(select(FollowupTask)).scalar_one()
        answers = {a.question_id: a.value for a in s.execute(
            select(Answer).order_by(Answer.id)).scalars()}
        recordings = list(s.execute(select(Recording)).scalars())
        s.expunge_all()
    return Outcome(attempts[0], task, answers, recordings)


def _call(app: App, server: AsteriskServer, peers: list[sipp.Sipp],
          patient: RtpPatient | None = None) -> Outcome:
    """Run the due call with these peers up; `why` says what Asterisk and SIPp saw."""
    observer = AmiObserver(server.ports.ami, OBSERVER_USER, OBSERVER_SECRET)
    observer.start()
    if patient is not None:
        patient.start()
    try:
        try:
            asyncio.run(run_due_calls(app))
        except TimeoutError:
            pytest.fail("the call was still going after 90 s:\n" + "\n".join(
                p.describe() for p in peers) + "\n--- asterisk\n" + server.log_tail())
        codes = sipp.wait_for_exit(peers, 30)
    finally:
        for peer in peers:
            peer.kill()
        if patient is not None:
            patient.stop()
        observer.stop()
    out = _outcome(app)
    out.asterisk_saw = observer.seen
    a = out.attempt
    out.why = (f"sipp exit codes {codes}; attempt: dial {a.dial_outcome}, script "
               f"{a.script_outcome}, cause {a.hangup_cause}, error {a.error}\n"
               + (f"patient heard {patient.heard}, keys left {patient.keys_left}\n"
                  if patient else "")
               + "\n".join(p.describe() for p in peers) + "\n--- asterisk\n"
               + server.log_tail())
    return out


def _utc(value: dt.datetime | None) -> dt.datetime:
    assert value is not None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _answers(patient: RtpPatient) -> str:
    """The patient's phone: it rings, answers with `patient` as its media, waits for BYE."""
    return sipp.answer_and_wait(patient.port, remote_file=patient.remote_file)


def _patient_peer(server: AsteriskServer, work: Path, scenario: str) -> sipp.Sipp:
    return sipp.Sipp(server.sipp, work, "patient", scenario, server.ports.trunk)


def _call_recording(app: App, outcome: Outcome) -> Recording:
    calls = [r for r in outcome.recordings if r.kind is RecordingKind.CALL]
    assert len(calls) == 1, outcome.why
    rec = calls[0]
    assert rec.attempt_id == outcome.attempt.id
    assert rec.sha256 and len(rec.sha256) == 64
    store = recording_store(app)
    with app.db.session() as s:
        assert store.verify(s, rec.id) is None
    data = (store.root / rec.path).read_bytes()
    assert data[:4] == b"RIFF" and len(data) > 8000, "the call recording holds no audio"
    # filed after MixMonitor closed it: the header's sizes are final (44-byte PCM header)
    assert data[36:40] == b"data" and struct.unpack("<I", data[40:44])[0] == len(data) - 44
    # the whole call is in it: its length is within 1 s of the time from MixMonitor's
    # start to the patient's hangup as Asterisk's own events time them (through the queue
    # bridge, if any)
    assert outcome.asterisk_saw is not None and outcome.attempt.uniqueid is not None
    span = outcome.asterisk_saw.span_s(outcome.attempt.uniqueid, "mixmonitorstart", "hangup")
    assert span is not None, f"Asterisk sent no MixMonitorStart/Hangup\n{outcome.why}"
    assert abs(rec.duration_ms / 1000 - span) <= 1.0, (
        f"recording {rec.duration_ms} ms, MixMonitor start to hangup {span:.3f} s\n"
        f"{outcome.why}")
    # the spool is emptied once the stored (encrypted, sha256-checked) copy verifies
    spool = Path(app.settings.asterisk.recording_dir)
    assert not list(spool.glob(f"call-{outcome.attempt.id}-*")), "MixMonitor's original stayed"
    return rec


def _answers_sit_on_their_keys(app: App, out: Outcome) -> None:
    """Each keypad answer's offset lies within 1 s of where its key sits in the recording:
    the key's `DTMFEnd` minus MixMonitor's start, as Asterisk's events time them."""
    assert out.asterisk_saw is not None and out.attempt.uniqueid is not None
    uid = out.attempt.uniqueid
    started = out.asterisk_saw.at[(uid, "mixmonitorstart")]
    with app.db.session() as s:
        stored = [(a.value, a.offset_ms) for a in s.execute(
            select(Answer).order_by(Answer.id)).scalars()]
    keys = out.asterisk_saw.keys.get(uid, [])[-len(stored):]  # the last keys answered
    assert [digit for _, digit in keys] == ["2", "4", "1"], out.why
    for (value, offset_ms), (at, digit) in zip(stored, keys, strict=True):
        assert offset_ms is not None, f"answer {value} has no offset"
        assert abs(offset_ms / 1000 - (at - started)) <= 1.0, (
            f"answer {value}: offset {offset_ms} ms, key {digit} at {at - started:.3f} s "
            "into the recording")


def test_answered_call_stores_keypad_answers_and_files_the_recording(
        asterisk: AsteriskServer, app: App, tmp_path: Path) -> None:
    patient = RtpPatient(["1", str(BIRTH_YEAR), "2", "4", "1"])
    peer = _patient_peer(asterisk, tmp_path, _answers(patient))
    out = _call(app, asterisk, [peer], patient)

    assert out.attempt.dial_outcome is DialOutcome.ANSWERED, out.why
    assert out.attempt.script_outcome is ScriptOutcome.COMPLETED, out.why
    assert out.attempt.status is AttemptStatus.ENDED
    assert out.attempt.answered_at is not None and out.attempt.dialled
    # the patient said hello as it picked up: Asterisk's AMD heard a person
    assert (out.attempt.amd_status, (out.attempt.amd_cause or "").split("-")[0]) == (
        AmdStatus.HUMAN, "HUMAN"), out.why
    assert out.answers == {"breathless": "no", "overall": "4", "meds": "yes"}, out.why
    assert out.task.status is TaskStatus.DONE
    _call_recording(app, out)
    assert patient.keys_left == []
    _answers_sit_on_their_keys(app, out)


def test_busy_line(asterisk: AsteriskServer, app: App, tmp_path: Path) -> None:
    out = _call(app, asterisk, [_patient_peer(asterisk, tmp_path, sipp.busy())])

    assert out.attempt.dial_outcome is DialOutcome.BUSY, out.why
    assert out.attempt.hangup_cause == 17
    assert out.attempt.dialled and out.attempt.answered_at is None
    assert out.attempt.script_outcome is None
    assert out.task.status is TaskStatus.PENDING and out.task.attempts == 1
    assert _utc(out.task.next_attempt_at) > _utc(out.attempt.ended_at)  # retried later
    assert out.answers == {} and out.recordings == []


def test_no_answer_rings_until_the_originate_timeout(
        asterisk: AsteriskServer, app: App, tmp_path: Path) -> None:
    peer = _patient_peer(asterisk, tmp_path, sipp.ring_until_cancelled())
    out = _call(app, asterisk, [peer])

    assert out.attempt.dial_outcome is DialOutcome.NO_ANSWER, out.why
    assert out.attempt.hangup_cause == 19  # no answer
    assert out.attempt.dialled and out.attempt.answered_at is None
    assert out.task.status is TaskStatus.PENDING and out.task.attempts == 1
    assert peer.proc.returncode == 0, out.why  # SIPp saw the CANCEL
    assert out.answers == {} and out.recordings == []


def test_hangup_during_the_first_prompt_is_partial(
        asterisk: AsteriskServer, app: App, tmp_path: Path) -> None:
    patient = RtpPatient([])
    peer = _patient_peer(asterisk, tmp_path, sipp.answer_then_hang_up(
        patient.port, 4000, remote_file=patient.remote_file))
    out = _call(app, asterisk, [peer], patient)

    assert out.attempt.dial_outcome is DialOutcome.ANSWERED, out.why
    assert out.attempt.script_outcome is ScriptOutcome.PARTIAL, out.why
    assert peer.proc.returncode == 0, out.why  # our BYE was accepted (200)
    assert patient.heard.packets > 0, "the opening was not playing when the patient left"
    assert out.answers == {}
    assert out.task.status is TaskStatus.PENDING
    _call_recording(app, out)


def test_hangup_mid_script_keeps_the_answers_given(
        asterisk: AsteriskServer, app: App, tmp_path: Path) -> None:
    # answers the first question (about 25 s in), then stays silent: the second is asked
    # three times over about 30 s before it would be stored unanswered, and the patient
    # hangs up in the middle of that (38 s in), which leaves room for slow prompts
    patient = RtpPatient(["1", str(BIRTH_YEAR), "1"])
    peer = _patient_peer(asterisk, tmp_path, sipp.answer_then_hang_up(
        patient.port, 38000, remote_file=patient.remote_file))
    out = _call(app, asterisk, [peer], patient)

    assert out.attempt.dial_outcome is DialOutcome.ANSWERED, out.why
    assert out.attempt.script_outcome is ScriptOutcome.PARTIAL, out.why
    assert patient.keys_left == [], out.why
    assert out.answers == {"breathless": "yes"}, out.why
    assert out.task.status is TaskStatus.PENDING
    _call_recording(app, out)


def test_zero_key_with_no_agent_ready_leaves_a_ticket_and_goes_on(
        asterisk: AsteriskServer, app: App, tmp_path: Path) -> None:
    """QUEUE_MEMBER(followup-agents,ready) is 0: no transfer; a ticket, the script goes on."""
    members = asterisk.cli("queue show followup-agents")
    assert "Not in use" not in members, "an agent is still registered:\n" + members
    patient = RtpPatient(["1", str(BIRTH_YEAR), "0", "2", "3", "1"])
    peer = _patient_peer(asterisk, tmp_path, _answers(patient))
    out = _call(app, asterisk, [peer], patient)

    assert out.attempt.script_outcome is ScriptOutcome.COMPLETED, out.why
    assert out.answers == {"breathless": "no", "overall": "3", "meds": "yes"}, out.why
    with app.db.session() as s:
        tickets = [(t.reason, t.attempt_id) for t in s.execute(select(Ticket)).scalars()]
    assert tickets == [(TicketReason.ASKED_FOR_PERSON, out.attempt.id)], out.why
    assert out.task.status is TaskStatus.DONE
    _call_recording(app, out)


def test_zero_key_transfers_to_an_agent_who_answers(
        asterisk: AsteriskServer, app: App, tmp_path: Path) -> None:
    port = asterisk.ports.agent
    reg = sipp.Sipp(asterisk.sipp, tmp_path, "register",
                    sipp.register(AGENT, AGENT_SECRET, asterisk.ports.sip, port), port,
                    remote=f"127.0.0.1:{asterisk.ports.sip}")
    assert reg.wait(20) == 0, reg.describe() + asterisk.log_tail()
    agent_media = RtpPatient([])
    agent = sipp.Sipp(asterisk.sipp, tmp_path, "agent",
                      sipp.agent_answers(agent_media.port, talk_ms=3000), port)
    patient = RtpPatient(["1", str(BIRTH_YEAR), "0"], talks_after_keys=True)
    peer = _patient_peer(asterisk, tmp_path, _answers(patient))
    agent_media.start()
    try:
        out = _call(app, asterisk, [peer, agent], patient)
    finally:
        agent_media.stop()
        unreg = sipp.Sipp(asterisk.sipp, tmp_path, "unregister",
                          sipp.register(AGENT, AGENT_SECRET, asterisk.ports.sip, port,
                                        expires=0), port,
                          remote=f"127.0.0.1:{asterisk.ports.sip}")
        unregistered = unreg.wait(20)

    assert out.attempt.dial_outcome is DialOutcome.ANSWERED, out.why
    assert out.attempt.script_outcome is ScriptOutcome.TRANSFERRED, out.why
    assert agent.proc.returncode == 0, out.why  # rang, answered, talked, hung up
    assert out.attempt.agent == f"Agent {AGENT}", out.why
    assert out.attempt.talk_time_s is not None and out.attempt.talk_time_s >= 2, out.why
    assert agent_media.heard.bursts > 0, "the agent did not hear the patient"
    assert out.task.status is TaskStatus.DONE, out.why
    _call_recording(app, out)
    assert unregistered == 0, unreg.describe()
    assert "Not in use" not in asterisk.cli("queue show followup-agents")


def _ringing_member(asterisk: AsteriskServer, tmp_path: Path, ext: str
                    ) -> tuple[sipp.Sipp, int]:
    """A queue member's phone that registers, then rings and never answers (SIPp: 180
    until Asterisk cancels). Returns it and its port (to unregister afterwards)."""
    port = free_port(socket.SOCK_DGRAM)
    reg = sipp.Sipp(asterisk.sipp, tmp_path, f"register-{ext}",
                    sipp.register(ext, AGENT_SECRET, asterisk.ports.sip, port), port,
                    remote=f"127.0.0.1:{asterisk.ports.sip}")
    assert reg.wait(20) == 0, reg.describe() + asterisk.log_tail()
    phone = sipp.Sipp(asterisk.sipp, tmp_path, f"member-{ext}", sipp.ring_until_cancelled(),
                      port)
    return phone, port


def _unregister(asterisk: AsteriskServer, tmp_path: Path, ext: str, port: int) -> int:
    unreg = sipp.Sipp(asterisk.sipp, tmp_path, f"unregister-{ext}",
                      sipp.register(ext, AGENT_SECRET, asterisk.ports.sip, port, expires=0),
                      port, remote=f"127.0.0.1:{asterisk.ports.sip}")
    return unreg.wait(20)


def _tickets(app: App) -> list[Ticket]:
    with app.db.session() as s:
        rows = list(s.execute(select(Ticket)).scalars())
        s.expunge_all()
    return rows


def test_zero_key_to_an_agent_who_rings_and_never_answers(
        asterisk: AsteriskServer, app: App, tmp_path: Path) -> None:
    """The queue rings the agent until it gives up: nobody took the call, so it is not
    `transferred`; the person request becomes a call-back ticket and the patient hears
    that we will call back before the line drops."""
    agent, port = _ringing_member(asterisk, tmp_path, AGENT)
    patient = RtpPatient(["1", str(BIRTH_YEAR), "0"])
    peer = _patient_peer(asterisk, tmp_path, _answers(patient))
    try:
        out = _call(app, asterisk, [peer, agent], patient)
    finally:
        unregistered = _unregister(asterisk, tmp_path, AGENT, port)
    log = asterisk.log_tail(500_000)
    assert out.attempt.dial_outcome is DialOutcome.ANSWERED, out.why
    assert out.attempt.script_outcome is ScriptOutcome.HANDOFF_UNANSWERED, out.why
    assert out.attempt.agent is None and out.attempt.talk_time_s is None, out.why
    assert "CANCEL" in agent.describe() or agent.proc.returncode == 0, out.why  # it rang
    tickets = _tickets(app)
    assert [(t.reason, t.attempt_id) for t in tickets] == [
        (TicketReason.ASKED_FOR_PERSON, out.attempt.id)], out.why
    assert tickets[0].due_at is not None
    assert "handoff=" in log, "no handoff session after the queue gave up:\n" + log
    assert out.task.status is TaskStatus.DONE
    _call_recording(app, out)
    assert unregistered == 0


def test_a_red_flag_the_nurse_never_answers_keeps_its_ticket(
        asterisk: AsteriskServer, tmp_path: Path) -> None:
    """Pain 5 of 5 in staffed hours: the call goes to the nurse queue, the nurse's phone
    rings and nobody answers. The red flag must reach a person: a high red-flag ticket, the
    answer kept with its flag, the safety message played, and no `transferred`."""
    app = make_app(asterisk, tmp_path / "store")
    seed_call(app.db, app.clock.now(), script="asterisk-redflag")
    nurse, port = _ringing_member(asterisk, tmp_path, "2101")
    patient = RtpPatient(["1", str(BIRTH_YEAR), "5"])
    peer = _patient_peer(asterisk, tmp_path, _answers(patient))
    try:
        out = _call(app, asterisk, [peer, nurse], patient)
    finally:
        unregistered = _unregister(asterisk, tmp_path, "2101", port)
        app.close()
        asterisk.hang_up_everything()
    log = asterisk.log_tail(500_000)
    assert out.attempt.script_outcome is ScriptOutcome.HANDOFF_UNANSWERED, out.why
    assert out.answers == {"pain": "5"}, out.why
    with app.db.session() as s:
        flag = s.execute(select(Answer.red_flag)).scalar_one()
    assert flag is Severity.HIGH
    tickets = _tickets(app)
    assert [(t.reason, t.severity) for t in tickets] == [
        (TicketReason.RED_FLAG, Severity.HIGH)], out.why
    assert "followup-nurses" in tickets[0].summary
    assert "handoff=" in log, "no handoff session after the queue gave up:\n" + log
    assert out.task.status is TaskStatus.DONE
    assert unregistered == 0


@pytest.mark.parametrize("command", ["run", "dial"])
def test_the_cli_places_the_due_call(asterisk: AsteriskServer, app: App, tmp_path: Path,
                                     command: str) -> None:
    """The same call through `followup run --backend asterisk` (the daemon, SIGTERM to end)
    and through `followup dial --backend asterisk` (ends by itself when nothing is due)."""
    patient = RtpPatient(["1", str(BIRTH_YEAR), "1", "5", "2"])
    peer = _patient_peer(asterisk, tmp_path, _answers(patient))
    observer = AmiObserver(asterisk.ports.ami, OBSERVER_USER, OBSERVER_SECRET)
    observer.start()
    patient.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLLOWUP_")}
    store = tmp_path / "store"
    env |= {"FOLLOWUP_DATABASE__URL": f"sqlite:///{store / 'followup.sqlite'}",
            "FOLLOWUP_RECORDINGS__DIR": str(store / "recordings")}
    log_path = tmp_path / "daemon.log"
    args = ["run", "--backend", "asterisk", "--no-jobs"] if command == "run" else \
        ["dial", "--backend", "asterisk"]
    with log_path.open("wb") as log:
        daemon = subprocess.Popen(
            [sys.executable, "-c", "from engine.cli import main; main()", "--config",
             str(asterisk.toml), "--data-dir", str(app.data_dir), *args], cwd=REPO, env=env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        if command == "run":
            ended = _wait_for_attempt_end(app, daemon, timeout_s=90)
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(timeout=30)
        else:
            code = daemon.wait(timeout=120)  # it stops by itself once nothing is due
            ended = True
    finally:
        if daemon.poll() is None:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait(timeout=10)
        peer.kill()
        patient.stop()
        observer.stop()
    daemon_log = log_path.read_text(errors="replace")[-4000:]
    assert ended, "the daemon never finished the call:\n" + daemon_log + asterisk.log_tail()
    assert code == 0, daemon_log
    if command == "dial":
        assert "claimed 1, dialled 1, answered 1, completed 1" in daemon_log, daemon_log
    out = _outcome(app)
    assert out.attempt.backend == "asterisk"
    assert out.attempt.dial_outcome is DialOutcome.ANSWERED, daemon_log
    assert out.attempt.script_outcome is ScriptOutcome.COMPLETED, daemon_log
    assert out.answers == {"breathless": "yes", "overall": "5", "meds": "no"}, daemon_log
    assert out.task.status is TaskStatus.DONE
    out.asterisk_saw = observer.seen
    _call_recording(app, out)


def _wait_for_attempt_end(app: App, daemon: subprocess.Popen[bytes], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and daemon.poll() is None:
        with app.db.session() as s:
            status = s.execute(select(CallAttempt.status)).scalar_one_or_none()
        if status is AttemptStatus.ENDED:
            return True
        time.sleep(0.5)
    return False


def test_zero_key_transfers_to_a_baresip_agent(
        asterisk: AsteriskServer, app: App, tmp_path: Path) -> None:
    """The agent is a real softphone (baresip, auto-answer) that talks, then hangs up."""
    binary = shutil.which("baresip")
    if binary is None:
        pytest.skip("no baresip on PATH: the softphone agent case needs it")
    say = tmp_path / "agent-says.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(say), "synth", "60",
                    "sine", "440"], check=True, timeout=30)
    phone = Baresip(binary, tmp_path, "2002", AGENT_SECRET, asterisk.ports.sip,
                    free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM), say)
    try:
        assert phone.wait_for("200 OK", 20), "baresip did not register:\n" + phone.output()
        hang_up = hang_up_after_answer(phone, talk_s=3.0, timeout_s=80)
        patient = RtpPatient(["1", str(BIRTH_YEAR), "0"])
        peer = _patient_peer(asterisk, tmp_path, _answers(patient))
        out = _call(app, asterisk, [peer], patient)
        hang_up.join(timeout=10)
    finally:
        phone.stop()
    why = out.why + "\n--- baresip\n" + phone.output()
    assert out.attempt.script_outcome is ScriptOutcome.TRANSFERRED, why
    assert phone.saw("answering call"), why
    assert out.attempt.agent == "Agent 2002", why
    assert out.attempt.talk_time_s is not None and out.attempt.talk_time_s >= 2, why
    assert patient.heard.packets > 0
    assert phone.saw("Call established"), why
    assert phone.saw("Call with sip:5550100@127.0.0.1 terminated"), why  # it hung up
    assert out.task.status is TaskStatus.DONE, why
    _call_recording(app, out)


def test_a_voicemail_greeting_hears_nothing_and_is_called_again_later(
        asterisk: AsteriskServer, app: App, tmp_path: Path) -> None:
    """A voicemail answers with its greeting: Asterisk's AMD says machine, the engine hangs
    up before any prompt (not even the opening: no STREAM FILE reaches Asterisk), the
    attempt is `machine` with Asterisk's verdict, and the task waits for another time of
    day."""
    wav = greeting(tmp_path / "greeting")
    log = asterisk.root / "log" / "messages.log"
    before = log.stat().st_size if log.exists() else 0
    peer = _patient_peer(asterisk, tmp_path, sipp.answer_and_stream(wav))
    out = _call(app, asterisk, [peer])

    assert out.attempt.dial_outcome is DialOutcome.MACHINE, out.why
    assert out.attempt.amd_status is AmdStatus.MACHINE, out.why
    assert out.attempt.amd_cause and out.attempt.amd_cause.split("-")[0] in (
        "LONGGREETING", "MAXWORDS"), out.why
    assert out.attempt.script_outcome is None and out.answers == {}
    with log.open("rb") as fh:
        fh.seek(before)
        during = fh.read().decode(errors="replace")
    assert "AMD" in during and "Playing" not in during, during[-3000:]
    assert out.task.status is TaskStatus.PENDING and out.task.attempts == 1
    assert _utc(out.task.next_attempt_at) >= _utc(out.attempt.ended_at) + dt.timedelta(hours=5)
    _call_recording(app, out)  # the greeting is on the call recording, for audit


def test_a_patient_who_agreed_to_messages_gets_the_callback_message_after_the_beep(
        asterisk: AsteriskServer, app: App, tmp_path: Path) -> None:
    """The script leaves messages and this patient agreed: after the greeting and its beep
    (Asterisk's WaitForSilence), the machine hears the one message with the hospital and
    the call-back number, nothing else (one file played, and it is that message: checked
    against the prompt cache by its text), and the attempt says a message was left."""
    with app.db.session() as s:
        s.execute(update(Patient).values(voicemail_ok=True))
    wav = greeting(tmp_path / "greeting", noise=0.004)
    log = asterisk.root / "log" / "messages.log"
    before = log.stat().st_size if log.exists() else 0
    peer = _patient_peer(asterisk, tmp_path, sipp.answer_and_stream(wav))
    out = _call(app, asterisk, [peer])

    assert out.attempt.dial_outcome is DialOutcome.MACHINE, out.why
    assert out.attempt.voicemail_left is True, out.why
    assert out.attempt.script_outcome is None and out.answers == {}
    with log.open("rb") as fh:
        fh.seek(before)
        during = fh.read().decode(errors="replace")
    played = [line for line in during.splitlines() if "Playing '" in line]
    script = next(sc for sc in load_scripts(SCRIPTS) if sc.id == SCRIPT)
    text = PromptRenderer().render_static(script.message("voicemail"), "Demo Hospital",
                                          "120", CALLBACK_NUMBER)
    assert CALLBACK_NUMBER in text and "Lee" not in text and "Cardiology" not in text
    expected = build_prompt_audio(app.data_dir, app.settings.tts.engine,
                                  app.settings.tts.voice, app.settings.tts.prompt_packs
                                  ).cache_path(text, "en-US")
    assert len(played) == 1 and expected.with_suffix("").name in played[0], (
        played, expected, during[-3000:])
    assert during.index("WaitForSilence") < during.index("Playing '"), during[-3000:]
    assert out.task.status is TaskStatus.PENDING and out.task.attempts == 1


def test_unreachable_when_nobody_listens_at_the_contact(
        asterisk: AsteriskServer, app: App) -> None:
    """Last in this module on purpose: with nobody at the trunk's port, Asterisk keeps
    retransmitting the INVITE for 32 s (SIP timer B) with a CANCEL pending, and the next
    test's SIPp would take that stale INVITE as its call (then see the CANCEL and quit)."""
    out = _call(app, asterisk, [])

    assert out.attempt.dial_outcome is DialOutcome.UNREACHABLE, out.why
    assert out.attempt.hangup_cause == 19
    assert out.attempt.answered_at is None
    assert out.task.status is TaskStatus.PENDING
    assert out.answers == {} and out.recordings == []
