"""The call path's acceptance fault test (issue 14): two `followup run` dialers on one
PostgreSQL work 2,000 due tasks on the sim backend while faults land at random moments:

- 20 SIGKILLs of either dialer (seeded), each followed by a quick restart on the same data
  dir (so the same truth log and spool);
- one PostgreSQL restart (`pg_ctlcluster <version> <cluster> restart`);
- one burst of terminated connections (`pg_terminate_backend` on the test database);
- a recordings folder (a tmpfs both dialers share) that fills mid-run and is enlarged a
  while later, so its spool drains.

Then the dialers finish the campaign and stop on SIGTERM, and the store is compared with
what the simulated patients really did (each dialer's truth log): no patient had two calls
at once, no task was called after it ended, no patient was dialled more often in a day than
the cap allows, every answer a patient gave (keypad and voice) is stored and every clip
filed, nothing is left live or claimed, no dialer died except by our SIGKILLs (not on the
database restart either), and no log has a traceback.

The dialers run on a shared accelerated clock (`--sim-epoch`): every incarnation, however
late it starts, reads the same simulated time, so leases and daily caps compare times of one
timeline. Leases are `LEASE_S` simulated seconds, about ten seconds of wall time: far above
any stall of a busy two-core machine, short enough that reclaims happen within the test.

A part that needs root (the tmpfs) or a local cluster (the restart) is skipped with a
printed reason when it cannot run here; the rest still runs.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from core.enums import AttemptStatus, ScriptOutcome, TaskStatus
from core.errors import StoreUnavailable
from core.store.db import Database
from core.store.models import Answer, CallAttempt, FollowupTask
from dialer.sim.truth_log import TruthEntry, handled_replies, read_truth
from ivr.answer_reading import Signal, read_keys
from ivr.interpreter import MIN_CLIP_MS
from ivr.results import Answer as GivenAnswer
from ivr.script_loader import load_scripts
from ivr.script_model import Script
from ivr.sim_channel import TurnKind
from tests.conftest import PG_URL, REPO
from tests.integration.dialer_seed import FAST_ENV, seed_due_tasks

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

FOLLOWUP = [sys.executable, "-c", "from engine.cli import main; main()"]
TASKS = 2000
SPEED = 1000.0  # simulated seconds per wall second
LEASE_S = 10_000  # simulated: 10 s of wall time
CHANNELS = 30  # per dialer
CAP = 2  # dialled calls per patient per local day
KILLS = 20
FAULTS_FROM_S, FAULTS_UNTIL_S = 6.0, 96.0  # wall seconds after the dialers start
FILL_AT_S, ENLARGE_AT_S = 22.0, 52.0
TERMINATE_AT_S = 36.0
PG_RESTART_AT_S = 68.0
QUIET_AROUND_RESTART_S = (6.0, 12.0)  # no kill this long before / after the restart
FILL_HEADROOM = 3 * 1024 * 1024  # bytes left in the folder when it "fills"
CAMPAIGN_TIMEOUT_S = 600.0
PATIENT_TZ = ZoneInfo("Asia/Shanghai")  # dialer_seed's patients
FINAL = {ScriptOutcome.COMPLETED, ScriptOutcome.ESCALATED, ScriptOutcome.TRANSFERRED,
         ScriptOutcome.HANDOFF_UNANSWERED, ScriptOutcome.REFUSED, ScriptOutcome.OPTED_OUT,
         ScriptOutcome.IDENTITY_FAILED}
LIVE = (AttemptStatus.DIALING, AttemptStatus.IN_CALL)


# -- the harness --------------------------------------------------------------------------


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database on the test server, dropped afterwards."""
    if not PG_URL:
        pytest.skip("PostgreSQL not configured: set FOLLOWUP_TEST_PG_URL (e.g. "
                    "postgresql://followup:followup@127.0.0.1/followup_test)")
    admin = Database(PG_URL)
    name = f"t_faults_{uuid.uuid4().hex[:8]}"
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def db(pg_url: str) -> Iterator[Database]:
    database = Database(pg_url)
    database.migrate()
    yield database
    database.dispose()


@dataclass
class Dialer:
    """One dialer's data dir and the `followup run` processes started on it, in order."""

    number: int
    data_dir: Path
    env: dict[str, str]
    epoch: dt.datetime
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    killed: set[int] = field(default_factory=set)  # pids we SIGKILLed

    @property
    def log(self) -> Path:
        return self.data_dir / "run.log"

    @property
    def truth(self) -> Path:
        return self.data_dir / "sim-calls" / "truth.jsonl"

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        return self.procs[-1]

    def start(self) -> None:
        with self.log.open("ab") as fh:
            fh.write(f"=== incarnation {len(self.procs) + 1}\n".encode())
            fh.flush()
            self.procs.append(subprocess.Popen(
                [*FOLLOWUP, "--data-dir", str(self.data_dir), "run", "--no-jobs",
                 "--speed", str(SPEED), "--seed", str(self.number),
                 "--sim-epoch", self.epoch.isoformat()],
                cwd=REPO, env=self.env, stdout=fh, stderr=subprocess.STDOUT))

    def kill_and_restart(self) -> None:
        proc = self.proc
        if proc.poll() is None:
            self.killed.add(proc.pid)
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        self.start()

    def unexpected_exits(self) -> list[str]:
        """Processes that ended although we neither killed them nor asked them to stop."""
        return [f"dialer {self.number} pid {p.pid} exited with {p.returncode}"
                for p in self.procs if p.poll() is not None and p.pid not in self.killed]

    def stop(self, timeout: float) -> int:
        proc = self.proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
            return -9


def _sim_now(epoch: dt.datetime) -> dt.datetime:
    """The dialers' simulated time now (see `engine.commands.dial.sim_clock`)."""
    return epoch + (dt.datetime.now(dt.UTC) - epoch) * SPEED


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def _local_cluster() -> tuple[list[str] | None, str]:
    """The `pg_ctlcluster` restart command for the cluster serving PG_URL, or None and why
    not (no pg_ctlcluster here, a remote server, no cluster on that port)."""
    url = make_url(PG_URL)
    if url.host not in (None, "", "127.0.0.1", "localhost", "::1"):
        return None, f"PostgreSQL at {url.host} is not local"
    if shutil.which("pg_lsclusters") is None or shutil.which("pg_ctlcluster") is None:
        return None, "pg_lsclusters/pg_ctlcluster not installed"
    listing = _run(["pg_lsclusters", "--no-header"])
    port = str(url.port or 5432)
    for line in listing.stdout.splitlines():
        cols = line.split()
        if len(cols) >= 4 and cols[2] == port and cols[3] == "online":
            return ["pg_ctlcluster", cols[0], cols[1], "restart"], f"cluster {cols[0]} {cols[1]}"
    return None, f"no online cluster on port {port} in pg_lsclusters: {listing.stdout!r}"


class RecordingsFolder:
    """The shared recordings folder: a tmpfs that can be filled and enlarged, or (without
    permission to mount) a plain directory and the reason the fill is skipped."""

    ROOMY = "4g"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir()
        done = _run(["mount", "-t", "tmpfs", "-o", f"size={self.ROOMY}", "tmpfs", str(path)])
        self.mounted = done.returncode == 0
        self.why_not = "" if self.mounted else f"mount failed: {done.stderr.strip()}"

    def used(self) -> int:
        st = os.statvfs(self.path)
        return (st.f_blocks - st.f_bfree) * st.f_frsize

    def fill(self) -> str:
        """Shrink the tmpfs to what it holds plus a little: the next recordings fill it."""
        for _ in range(5):
            size_k = (self.used() + FILL_HEADROOM) // 1024
            done = _run(["mount", "-o", f"remount,size={size_k}k", str(self.path)])
            if done.returncode == 0:
                return f"recordings folder shrunk to {size_k} KiB ({self.used()} B used)"
        raise AssertionError(f"could not shrink the recordings tmpfs: {done.stderr}")

    def enlarge(self) -> None:
        done = _run(["mount", "-o", f"remount,size={self.ROOMY}", str(self.path)])
        assert done.returncode == 0, done.stderr

    def unmount(self) -> None:
        if self.mounted:
            _run(["umount", "-l", str(self.path)])
            self.mounted = False


@dataclass
class Fault:
    at_s: float
    name: str
    act: Callable[[], str | None]


def _schedule(rng: random.Random, restart_at: float | None) -> list[float]:
    """KILLS moments in the fault window, none right around the database restart (so a
    dialer that is gone after it can only have exited because of it)."""
    before, after = QUIET_AROUND_RESTART_S
    moments: list[float] = []
    while len(moments) < KILLS:
        t = rng.uniform(FAULTS_FROM_S, FAULTS_UNTIL_S)
        if restart_at is not None and restart_at - before <= t <= restart_at + after:
            continue
        moments.append(t)
    return sorted(moments)


# -- what the store must show -------------------------------------------------------------


def _expected_answers(entries: list[TruthEntry], scripts: dict[str, Script]
                      ) -> dict[tuple[int, str, str], TruthEntry]:
    """(attempt, script, question) of every reply the IVR handled that makes an answer:
    keys the question accepts, a spoken clip on a voice question, or the last try after
    timeouts and invalid keys (stored as unanswered). Requests (0, 9) and repeats are not
    answers; neither is an earlier timeout that was asked again."""
    expected: dict[tuple[int, str, str], TruthEntry] = {}
    misses: Counter[tuple[str, int | None, str, str]] = Counter()
    for entry in handled_replies(entries):
        asked = entry.question
        if asked is None or entry.attempt_id is None:
            continue
        script = scripts[asked[0]]
        question = script.question(asked[1])
        key = (entry.attempt_id, asked[0], asked[1])
        if entry.turn is TurnKind.RECORD:
            if entry.clip is not None and entry.clip_ms >= MIN_CLIP_MS:
                expected[key] = entry
                continue
            outcome: GivenAnswer | Signal = {
                "*": Signal.REPEAT, "0": Signal.OPERATOR, "9": Signal.OPT_OUT,
            }.get(entry.digits, Signal.TIMEOUT)
        elif entry.turn is TurnKind.DIGITS:
            outcome = read_keys(script, question, entry.digits)
        else:
            continue  # a barge-in on a message
        if isinstance(outcome, GivenAnswer):
            expected[key] = entry
        elif outcome in (Signal.TIMEOUT, Signal.INVALID):
            misses[(entry.call, entry.attempt_id, *asked)] += 1
            if misses[(entry.call, entry.attempt_id, *asked)] > script.retries:
                expected[key] = entry
    return expected


def _overlaps(attempts: list[CallAttempt]) -> list[str]:
    by_patient: dict[int, list[CallAttempt]] = defaultdict(list)
    for a in attempts:
        by_patient[a.patient_id].append(a)
    bad = []
    for patient, calls in by_patient.items():
        calls.sort(key=lambda a: (a.created_at, a.id))
        for a, b in itertools.pairwise(calls):
            if a.ended_at is None or a.ended_at > b.created_at:
                bad.append(f"patient {patient}: attempt {a.id} [{a.created_at}, {a.ended_at}] "
                           f"overlaps attempt {b.id} from {b.created_at}")
    return bad


def _calls_after_end(attempts: list[CallAttempt], tasks: dict[int, FollowupTask]) -> list[str]:
    by_task: dict[int, list[CallAttempt]] = defaultdict(list)
    for a in attempts:
        by_task[a.task_id].append(a)
    bad = []
    for task_id, calls in by_task.items():
        calls.sort(key=lambda a: (a.created_at, a.id))
        task = tasks[task_id]
        late = [a.id for a in calls if task.closed_at is not None and a.created_at > task.closed_at]
        if late:
            bad.append(f"task {task_id} closed at {task.closed_at}: attempts {late} after it")
        finals = [a for a in calls if a.script_outcome in FINAL]
        if len(finals) > 1:
            bad.append(f"task {task_id} ended twice: attempts {[a.id for a in finals]}")
        elif finals and finals[0] is not calls[-1]:
            bad.append(f"task {task_id} ended with attempt {finals[0].id} and was called "
                       f"again: {[a.id for a in calls if a.created_at > finals[0].created_at]}")
    return bad


def _cap_breaches(attempts: list[CallAttempt]) -> list[str]:
    per_day: Counter[tuple[int, dt.date]] = Counter()
    for a in attempts:
        if a.dialled:
            per_day[(a.patient_id, a.created_at.astimezone(PATIENT_TZ).date())] += 1
    return [f"patient {p} dialled {n} times on {day}" for (p, day), n in per_day.items()
            if n > CAP]


def _open_work(db: Database) -> tuple[int, int]:
    """(open tasks, live attempts)."""
    with db.session() as s:
        tasks = s.execute(select(func.count()).select_from(FollowupTask).where(
            FollowupTask.status.in_([TaskStatus.PENDING, TaskStatus.CLAIMED]))).scalar_one()
        live = s.execute(select(func.count()).select_from(CallAttempt).where(
            CallAttempt.status.in_(LIVE))).scalar_one()
    return int(tasks), int(live)


def _stranded(db: Database, before: dt.datetime, now: dt.datetime) -> list[str]:
    """Attempts begun before `before` still live, and claims whose lease expired longer ago
    than the reclaim grace and interval, at simulated time `now`."""
    overdue = now - dt.timedelta(seconds=LEASE_S / 10 + LEASE_S / 5 + 5 * SPEED)
    with db.session() as s:
        live = s.execute(select(CallAttempt.id, CallAttempt.task_id).where(
            CallAttempt.status.in_(LIVE), CallAttempt.created_at < before)).all()
        claimed = s.execute(select(FollowupTask.id, FollowupTask.lease_expires_at).where(
            FollowupTask.status == TaskStatus.CLAIMED,
            FollowupTask.lease_expires_at < overdue)).all()
    return ([f"attempt {a} (task {t}) still live" for a, t in live]
            + [f"task {t} claimed, lease expired {exp}" for t, exp in claimed])


def _tracebacks(log: str) -> list[str]:
    """Each traceback in a dialer's log as its log line and the exception it ended with."""
    out: list[str] = []
    record = ""
    exception: str | None = None
    for line in log.splitlines():
        if line[:2].isdigit():  # a new log record ("2026-...")
            if exception is not None:
                out.append(f"{record} -> {exception}")
                exception = None
            record = line
        elif line.startswith("Traceback"):
            exception = ""
        elif exception is not None and line and not line[0].isspace():
            exception = line  # the last unindented line: the exception raised
    if exception is not None:
        out.append(f"{record} -> {exception}")
    return out


# -- the test -------------------------------------------------------------------------------


def test_call_path_survives_faults(db: Database, pg_url: str, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    def note(message: str) -> None:
        with capsys.disabled():
            print(f"\n[call-path faults] {message}", flush=True)

    restart_cmd, cluster = _local_cluster()
    if restart_cmd is None:
        note(f"PostgreSQL restart skipped: {cluster}")
    folder = RecordingsFolder(tmp_path / "recordings")
    if not folder.mounted:
        note(f"recordings folder that fills skipped: {folder.why_not}")

    epoch = dt.datetime.now(dt.UTC)
    seed_due_tasks(db, TASKS, epoch)
    env = {**os.environ, **FAST_ENV, "FOLLOWUP_DATABASE__URL": pg_url,
           "FOLLOWUP_DIALER__MAX_CHANNELS": str(CHANNELS),
           "FOLLOWUP_DIALER__LEASE_SECONDS": str(LEASE_S),
           "FOLLOWUP_DIALER__MAX_CALLS_PER_PATIENT_PER_DAY": str(CAP),
           "FOLLOWUP_DIALER__MIN_FREE_RECORDING_MB": "1",
           "FOLLOWUP_RECORDINGS__DIR": str(folder.path)}
    dialers = []
    for n in (1, 2):
        data_dir = tmp_path / f"dialer{n}"
        data_dir.mkdir()
        dialers.append(Dialer(n, data_dir, env, epoch))

    rng = random.Random(20261202)
    faults: list[Fault] = []
    for at in _schedule(rng, PG_RESTART_AT_S if restart_cmd else None):
        victim = rng.choice(dialers)
        faults.append(Fault(at, f"SIGKILL dialer {victim.number}",
                            lambda d=victim: d.kill_and_restart()))
    problems: list[str] = []

    def terminate() -> str:
        admin = Database(PG_URL)
        try:
            total = 0
            for _ in range(3):
                with admin.engine.connect().execution_options(
                        isolation_level="AUTOCOMMIT") as conn:
                    total += int(conn.execute(text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"),
                        {"name": make_url(pg_url).database}).scalar_one())
                time.sleep(0.3)
            return f"terminated {total} connections"
        finally:
            admin.dispose()

    def restart_pg() -> str:
        assert restart_cmd is not None
        before = [d.proc for d in dialers]
        assert all(p.poll() is None for p in before), "a dialer was down before the restart"
        started = time.monotonic()
        done = _run(restart_cmd)
        assert done.returncode == 0, f"{restart_cmd}: {done.stderr}"
        took = time.monotonic() - started
        time.sleep(QUIET_AROUND_RESTART_S[1] - 1.0)
        gone = [f"dialer {d.number} (pid {p.pid}) exited with {p.returncode} after the "
                "database restart" for d, p in zip(dialers, before, strict=True)
                if p.poll() is not None]
        problems.extend(gone)
        return f"restarted {cluster} in {took:.1f} s"

    faults.append(Fault(TERMINATE_AT_S, "terminated-connection burst", terminate))
    if restart_cmd is not None:
        faults.append(Fault(PG_RESTART_AT_S, "PostgreSQL restart", restart_pg))
    if folder.mounted:
        faults.append(Fault(FILL_AT_S, "recordings folder fills", folder.fill))
        faults.append(Fault(ENLARGE_AT_S, "recordings folder enlarged",
                            lambda: folder.enlarge()))  # not a fault: the repair
    faults.sort(key=lambda f: f.at_s)
    last_fault_s = max(f.at_s for f in faults if f.name != "recordings folder enlarged")

    started = time.monotonic()
    spooled_seen = 0
    stranded: list[str] | None = None
    codes: list[int] = []
    try:
        for d in dialers:
            d.start()
        pending = list(faults)
        last_fault_sim: dt.datetime | None = None
        check_stranded_at = last_fault_s + LEASE_S * 1.3 / SPEED + 5.0
        while True:
            elapsed = time.monotonic() - started
            while pending and pending[0].at_s <= elapsed:
                fault = pending.pop(0)
                said = fault.act()
                note(f"{elapsed:6.1f} s  {fault.name}{': ' + said if said else ''}")
                if fault.at_s == last_fault_s:
                    last_fault_sim = _sim_now(epoch)
            for d in dialers:
                problems.extend(x for x in d.unexpected_exits() if x not in problems)
            try:
                open_tasks, live = _open_work(db)
                if folder.mounted and FILL_AT_S < elapsed < ENLARGE_AT_S + 5:
                    with db.session() as s:
                        spooled_seen = max(spooled_seen, int(s.execute(
                            select(func.count()).select_from(Answer)
                            .where(Answer.clip_spool.is_not(None))).scalar_one()) + int(
                            s.execute(select(func.count()).select_from(CallAttempt).where(
                                CallAttempt.recording_spool.is_not(None))).scalar_one()))
                if stranded is None and last_fault_sim is not None \
                        and elapsed >= check_stranded_at:
                    stranded = _stranded(db, last_fault_sim, _sim_now(epoch))
            except StoreUnavailable:  # the restart or the burst: look again
                time.sleep(0.2)
                continue
            if not pending and stranded is not None and open_tasks == 0:
                break
            if elapsed > CAMPAIGN_TIMEOUT_S:
                problems.append(f"campaign not finished after {CAMPAIGN_TIMEOUT_S:.0f} s: "
                                f"{open_tasks} tasks open, {live} calls live")
                break
            time.sleep(0.2)
    finally:
        codes = [d.stop(timeout=120) for d in dialers]
        folder.unmount()
    wall = time.monotonic() - started
    logs = {d.number: d.log.read_text(errors="replace") for d in dialers}

    with db.session() as s:
        attempts = list(s.execute(select(CallAttempt).order_by(CallAttempt.id)).scalars())
        tasks = {t.id: t for t in s.execute(select(FollowupTask)).scalars()}
        answers = list(s.execute(select(Answer)).scalars())
    scripts = {sc.id: sc for sc in load_scripts(REPO / "scripts") if sc.locale == "zh-CN"}
    truth = [e for d in dialers if d.truth.exists() for e in read_truth(d.truth)]
    expected = _expected_answers(truth, scripts)
    stored = {(a.attempt_id, a.script_id, a.question_id) for a in answers}
    missing = sorted(k for k in expected if k not in stored)
    voice = [k for k, e in expected.items() if e.turn is TurnKind.RECORD and e.clip]
    outcomes = Counter(str(a.script_outcome or a.dial_outcome or a.status) for a in attempts)
    note(f"{wall:.0f} s wall; {len(attempts)} attempts over {len(tasks)} tasks; "
         f"{len(expected)} answers given ({len(voice)} spoken), {len(answers)} stored; "
         f"spooled while full: {spooled_seen}; exit codes {codes}; outcomes "
         f"{dict(sorted(outcomes.items()))}")

    assert not problems, problems
    assert codes == [0, 0], f"last incarnations' exit codes {codes}"
    assert sum(len(d.killed) for d in dialers) == KILLS
    assert stranded == [], f"one lease after the last fault: {stranded}"
    assert [t.id for t in tasks.values() if t.status in (TaskStatus.PENDING,
                                                        TaskStatus.CLAIMED)] == []
    assert [a.id for a in attempts if a.status in LIVE] == []
    assert _overlaps(attempts) == []
    assert _calls_after_end(attempts, tasks) == []
    assert _cap_breaches(attempts) == []
    assert missing == [], f"{len(missing)} answers given but not stored, e.g. " + "; ".join(
        f"{k}: {expected[k].to_json()}" for k in missing[:5])
    assert voice, "no patient spoke an answer: the voice path went untested"
    assert [a.id for a in answers if a.clip_spool is not None] == []
    assert [a.id for a in attempts if a.recording_spool is not None] == []
    unknown = [a for a in attempts if a.status is AttemptStatus.UNKNOWN]
    assert unknown, "no SIGKILL landed during a call: the kills proved nothing"
    if folder.mounted:
        assert spooled_seen, "the full recordings folder spooled nothing: the fill missed"
    assert {n: _tracebacks(log) for n, log in logs.items()} == {1: [], 2: []}
