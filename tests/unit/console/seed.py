"""A small hospital for the console tests: two departments, one user per role, calls with
answers and transcripts, a real WAV filed through the RecordingStore, tickets, and
satisfaction answers over several months (enough to pass the small-count suppression)."""

from __future__ import annotations

import datetime as dt
import io
import math
import struct
import wave
from dataclasses import dataclass, field
from pathlib import Path

from console.passwords import hash_password
from console.periods import previous_month
from core.clock import Clock
from core.enums import (
    AnswerSource,
    AttemptStatus,
    DialOutcome,
    EncounterType,
    QuestionKind,
    RecordingKind,
    Role,
    ScriptOutcome,
    Severity,
    Sex,
    TaskStatus,
    TicketReason,
    TicketStatus,
)
from core.store.db import Database
from core.store.models import (
    Answer,
    CallAttempt,
    Department,
    Encounter,
    FollowupTask,
    Patient,
    Ticket,
    User,
)
from recordings.store import RecordingStore

PASSWORD = "correct-horse-battery"
SAT_QUESTIONS = ("overall", "doctors", "nurses")


def tone_wav(seconds: float = 6.0, rate: int = 8000) -> bytes:
    """A real 8 kHz mono 16-bit WAV (a tone that changes pitch each second)."""
    frames = bytearray()
    for i in range(int(seconds * rate)):
        freq = 300 + 100 * (i // rate)
        frames += struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / rate)))
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return out.getvalue()


@dataclass
class Seeded:
    card_id: int = 0
    onc_id: int = 0
    users: dict[str, int] = field(default_factory=dict)
    card_patient: int = 0
    onc_patient: int = 0
    card_call: int = 0  # answered, recorded, with transcripts, today
    onc_call: int = 0
    card_recording: int = 0
    card_clip: int = 0  # the voice answer's own clip
    onc_recording: int = 0
    card_ticket: int = 0
    onc_ticket: int = 0
    recording_path: Path = Path()


USERS = {
    "sys": (Role.SYSADMIN, None),
    "admin": (Role.ADMIN, None),
    "mgr_card": (Role.DEPT_MANAGER, "CARD"),
    "mgr_onc": (Role.DEPT_MANAGER, "ONC"),
    "sup_card": (Role.SUPERVISOR, "CARD"),
    "agent_card": (Role.AGENT, "CARD"),
}


def seed(db: Database, clock: Clock, store: RecordingStore, *,
         monthly_patients: int = 6) -> Seeded:
    """Fill a migrated store; `clock.now()` is 'today' (2026-03-10 in the tests)."""
    now = clock.now()
    out = Seeded()
    pw = hash_password(PASSWORD)
    with db.session() as s:
        card = Department(code="CARD", name="心内科", name_en="Cardiology")
        onc = Department(code="ONC", name="肿瘤科", name_en="Oncology")
        s.add_all([card, onc])
        s.flush()
        out.card_id, out.onc_id = card.id, onc.id
        codes = {"CARD": card.id, "ONC": onc.id}
        for name, (role, dept) in USERS.items():
            u = User(username=name, display_name=name.upper(), password_hash=pw, role=role,
                     department_id=codes[dept] if dept else None, active=True,
                     created_at=now)
            s.add(u)
            s.flush()
            out.users[name] = u.id

        serial = [0]

        def patient(name: str) -> Patient:
            serial[0] += 1
            p = Patient(his_id=f"H{serial[0]}", mrn=f"MRN{serial[0]:04d}", name=name,
                        sex=Sex.FEMALE, birth_date=dt.date(1950, 1, 1),
                        phone=f"+861380013{serial[0]:04d}", language="zh-CN",
                        timezone="Asia/Shanghai", content_hash="x", updated_at=now)
            s.add(p)
            s.flush()
            return p

        def visit(p: Patient, dept: int, due: dt.date, status: TaskStatus,
                  script: str = "cardiology-post-discharge") -> FollowupTask:
            e = Encounter(his_id=f"E{p.his_id}-{due}-{script}", patient_id=p.id,
                          type=EncounterType.INPATIENT, department_id=dept,
                          discharge_at=now - dt.timedelta(days=3), diagnoses=[], procedures=[],
                          content_hash="y", updated_at=now)
            s.add(e)
            s.flush()
            start = dt.datetime.combine(due, dt.time(1, 0), dt.UTC)
            t = FollowupTask(plan_key=f"k-{e.his_id}", patient_id=p.id, encounter_id=e.id,
                             department_id=dept, rule_id="r", offset_days=3, script_id=script,
                             script_version=1, call_scripts=[script], due_date=due,
                             calling_window="09:00-20:00", timezone="Asia/Shanghai",
                             window_start=start, window_end=start + dt.timedelta(hours=11),
                             status=status, attempts=1, max_attempts=3, next_attempt_at=start,
                             created_at=now, updated_at=now)
            s.add(t)
            s.flush()
            return t

        def attempt(t: FollowupTask, at: dt.datetime, outcome: ScriptOutcome | None,
                    dial: DialOutcome = DialOutcome.ANSWERED) -> CallAttempt:
            a = CallAttempt(task_id=t.id, patient_id=t.patient_id,
                            department_id=t.department_id, number=1,
                            status=AttemptStatus.ENDED, backend="sim", phone="+8613800000000",
                            dialled=True, dial_outcome=dial, script_outcome=outcome,
                            created_at=at, answered_at=at, ended_at=at + dt.timedelta(minutes=2))
            s.add(a)
            s.flush()
            return a

        def answer(a: CallAttempt, script: str, qid: str, kind: QuestionKind, value: str,
                   **extra: object) -> None:
            s.add(Answer(attempt_id=a.id, task_id=a.task_id, script_id=script,
                         script_version=1, question_id=qid, kind=kind,
                         source=extra.pop("source", AnswerSource.KEYPAD),  # type: ignore[arg-type]
                         value=value, created_at=a.created_at, **extra))

        today = now.date()
        # --- the call the browser walks: CARD, answered, recorded, transcripts
        p1 = patient("王芳")
        out.card_patient = p1.id
        t1 = visit(p1, card.id, today, TaskStatus.DONE)
        a1 = attempt(t1, now - dt.timedelta(minutes=30), ScriptOutcome.COMPLETED)
        out.card_call = a1.id
        rec = store.file_bytes(s, tone_wav(), kind=RecordingKind.CALL, attempt_id=a1.id,
                               department_id=card.id)
        out.card_recording = rec.id
        out.recording_path = rec.path
        # as the IVR stores them: keys with where they ended in the call, a voice answer
        # with its own clip and where the clip starts in the call
        clip = store.file_bytes(s, tone_wav(), kind=RecordingKind.ANSWER_CLIP,
                                attempt_id=a1.id, department_id=card.id)
        out.card_clip = clip.id
        answer(a1, "cardiology-post-discharge", "chest_pain", QuestionKind.YES_NO, "no",
               offset_ms=1500)
        answer(a1, "cardiology-post-discharge", "comment", QuestionKind.VOICE, "",
               source=AnswerSource.VOICE, transcript="感觉好多了 只是有点累", confidence=0.42,
               needs_review=True, recording_id=clip.id, offset_ms=3200)
        answer(a1, "cardiology-post-discharge", "breathless", QuestionKind.YES_NO, "yes",
               red_flag=Severity.HIGH, offset_ms=4700)
        t_ticket = Ticket(task_id=t1.id, attempt_id=a1.id, patient_id=p1.id,
                          department_id=card.id, reason=TicketReason.RED_FLAG,
                          severity=Severity.HIGH, priority=90, status=TicketStatus.OPEN,
                          summary="出院后气短", created_at=now)
        s.add(t_ticket)
        s.flush()
        out.card_ticket = t_ticket.id
        # --- ONC: another department's patient, call, recording, ticket
        p2 = patient("李雷")
        out.onc_patient = p2.id
        t2 = visit(p2, onc.id, today, TaskStatus.DONE, "oncology-post-discharge")
        a2 = attempt(t2, now - dt.timedelta(minutes=20), ScriptOutcome.COMPLETED)
        out.onc_call = a2.id
        rec2 = store.file_bytes(s, tone_wav(3.0), kind=RecordingKind.CALL, attempt_id=a2.id,
                                department_id=onc.id)
        out.onc_recording = rec2.id
        tk2 = Ticket(task_id=t2.id, attempt_id=a2.id, patient_id=p2.id, department_id=onc.id,
                     reason=TicketReason.ATTEMPTS_EXHAUSTED, priority=50,
                     status=TicketStatus.OPEN, summary="not reached", created_at=now)
        s.add(tk2)
        s.flush()
        out.onc_ticket = tk2.id
        # --- CARD satisfaction over this month and the two before (report, trend)
        for months_back, base in ((0, 4), (1, 3), (2, 3)):
            first = today.replace(day=1)
            for _ in range(months_back):
                first = previous_month(first)
            day = first + dt.timedelta(days=2) if months_back else today
            for i in range(monthly_patients):
                p = patient(f"患者{months_back}{i}")
                t = visit(p, card.id, day, TaskStatus.DONE if i < monthly_patients - 1
                          else TaskStatus.FAILED, "inpatient-satisfaction")
                if i == monthly_patients - 1:
                    continue
                at = dt.datetime.combine(day, dt.time(2, i), dt.UTC)
                a = attempt(t, at, ScriptOutcome.COMPLETED)
                for q in SAT_QUESTIONS:
                    score = base + (1 if (i + len(q)) % 2 else 0) - (q == "nurses")
                    answer(a, "inpatient-satisfaction", q, QuestionKind.SCALE, str(score))
                answer(a, "inpatient-satisfaction", "recommend", QuestionKind.YES_NO,
                       "yes" if i % 3 else "no")
                # a question answered by only two patients: suppressed
                if i < 2:
                    answer(a, "inpatient-satisfaction", "food", QuestionKind.SCALE, "1")
    return out
