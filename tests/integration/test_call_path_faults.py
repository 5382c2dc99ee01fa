"""The call path's acceptance fault test (issue 14): two `followup run` dialers on one
PostgreSQL work 2,000 due tasks on the sim backend while faults land at random moments:

- 20 SIGKILLs of either dialer (seeded), each at a random moment of a running dialer's
  work, followed at once by a restart on the same data dir (same truth log and spool);
- one PostgreSQL restart (`pg_ctlcluster <version> <cluster> restart`);
- one burst of terminated connections (`pg_terminate_backend` on the test database);
- a recordings folder (a tmpfs both dialers share) that fills mid-run: at a set moment it
  is shrunk to what it holds plus 3 MiB, so the next recordings fill it; a while later it
  is enlarged and its spool must drain.

Then the dialers finish the campaign and stop on SIGTERM (exit code 0), and the store is
compared with what the simulated patients really did (each dialer's truth log). The
scenario runs once (a module fixture); each property is its own test below.

The dialers share one accelerated clock (`--sim-epoch`): every incarnation, however late it
starts, reads the same simulated time, so leases and daily caps compare times of one
timeline. A lease is `LEASE_S` simulated seconds, ten seconds of wall time (and a lease is
taken back only a further lease after it expired): far above any stall of a busy two-core
machine, short enough that reclaims happen within the test.

A part that needs root (the tmpfs) or a local cluster (the restart) is skipped with a
printed reason when it cannot run here; the rest still runs. The run prints its faults and
progress as it goes; FOLLOWUP_TEST_KEEP_DB=1 keeps the database for a post-mortem (the
dialers' logs and truth logs stay in pytest's temporary directory).
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from core.enums import AnswerSource, AttemptStatus, ScriptOutcome, TaskStatus
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
from tests.conftest import PG_REQUIRED, PG_URL, REPO
from tests.integration.dialer_seed import FAST_ENV, seed_due_tasks
from tests.pg_scratch import scratch_database

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

FOLLOWUP = [sys.executable, "-c", "from engine.cli import main; main()"]
TASKS = 2000
SPEED = 1000.0  # simulated seconds per wall second
LEASE_S = 10_000  # simulated: 10 s of wall time
# A dead dialer's lease runs out at most a lease after it died; live dialers take it back a
# whole further lease later (the grace, engine/dialing.py) at their next periodic reclaim
# (every fifth of a lease); allow ten seconds for a busy store and a busy loop.
RECLAIMED_WITHIN_S = LEASE_S + LEASE_S / 5 + 10 * SPEED
CHANNELS = 16  # per dialer: more only queues more work on two busy cores
CAP = 2  # dialled calls per patient per local day
KILLS = 20
KILLS_FROM_S, KILLS_UNTIL_S = 8.0, 130.0  # wall seconds after the dialers start
KILL_AFTER_UP_S = (0.5, 6.0)  # a kill lands this long into a dialer's campaign
FILL_AT_S, ENLARGE_AT_S = 30.0, 48.0  # calling pauses while it is full: keep it short
TERMINATE_AT_S = 60.0
PG_RESTART_AT_S = 95.0
QUIET_AROUND_RESTART_S = (8.0, 12.0)  # no kill this long before / after the restart
FILL_HEADROOM = 3 * 1024 * 1024  # bytes left in the folder when it "fills"
CAMPAIGN_TIMEOUT_S = 720.0
PROGRESS_EVERY_S = 30.0
RESTART = "PostgreSQL restart"
PATIENT_TZ = ZoneInfo("Asia/Shanghai")  # dialer_seed's patients
FINAL = {ScriptOutcome.COMPLETED, ScriptOutcome.ESCALATED, ScriptOutcome.TRANSFERRED,
         ScriptOutcome.HANDOFF_UNANSWERED, ScriptOutcome.REFUSED, ScriptOutcome.OPTED_OUT,
         ScriptOutcome.IDENTITY_FAILED}
LIVE = (AttemptStatus.DIALING, AttemptStatus.IN_CALL)


# -- the harness ----------------------------------------------------------------------------


@dataclass
class Dialer:
    """One dialer's data dir and the `followup run` processes started on it, in order."""

    number: int
    data_dir: Path
    env: dict[str, str]
    epoch: dt.datetime
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    killed: set[int] = field(default_factory=set)  # pids we SIGKILLed
    up_since: float | None = None  # when the current incarnation's campaign started

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
        self.up_since = None
        with self.log.open("ab") as fh:
            fh.write(f"=== incarnation {len(self.procs) + 1}\n".encode())
            fh.flush()
            self.procs.append(subprocess.Popen(
                [*FOLLOWUP, "--data-dir", str(self.data_dir), "run", "--no-jobs",
                 "--speed", str(SPEED), "--seed", str(self.number),
                 "--sim-epoch", self.epoch.isoformat()],
                cwd=REPO, env=self.env, stdout=fh, stderr=subprocess.STDOUT))

    def watch(self, now: float) -> None:
        """Note when the current incarnation's campaign has started (its log says so)."""
        if self.up_since is None and self.proc.poll() is None:
            log = self.log.read_text(errors="replace")
            if "Scheduler started" in log[log.rfind("=== incarnation"):]:
                self.up_since = now

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

    ROOMY = "4g"  # tmpfs takes memory only for what it holds (about 1 GB here)

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
                return f"shrunk to {size_k} KiB ({self.used() // 1024} KiB used)"
        raise AssertionError(f"could not shrink the recordings tmpfs: {done.stderr}")

    def enlarge(self) -> str:
        done = _run(["mount", "-o", f"remount,size={self.ROOMY}", str(self.path)])
        assert done.returncode == 0, done.stderr
        return f"{self.ROOMY}"

    def unmount(self) -> None:
        if self.mounted:
            _run(["umount", "-l", str(self.path)])
            self.mounted = False


@dataclass
class Fault:
    at_s: float
    name: str
    act: Callable[[], str]
    ready: Callable[[], bool] = lambda: True  # else it waits until it is
    is_fault: bool = True  # False: the repair (the folder enlarged)


def _kill_moments(rng: random.Random, restart_at: float | None) -> list[float]:
    """KILLS moments in the kill window, none right around the database restart (so a
    dialer that is gone after it can only have exited because of it)."""
    before, after = QUIET_AROUND_RESTART_S
    moments: list[float] = []
    while len(moments) < KILLS:
        t = rng.uniform(KILLS_FROM_S, KILLS_UNTIL_S)
        if restart_at is None or not restart_at - before <= t <= restart_at + after:
            moments.append(t)
    return sorted(moments)


@dataclass
class FaultRun:
    """What one run of the scenario left: the store, the truth logs, the logs, and what
    the harness saw on the way."""

    attempts: list[CallAttempt]
    tasks: dict[int, FollowupTask]
    answers: list[Answer]
    truth: list[TruthEntry]
    scripts: dict[str, Script]
    logs: dict[int, str]
    exit_codes: list[int]
    kills: int
    died: list[str]  # dialers that ended although nobody killed or stopped them
    stranded: list[str] | None  # one lease after the last fault (None: never checked)
    unfinished: str | None
    folder_filled: bool
    spooled_while_full: int
    restarted: bool
    skipped: list[str]  # the parts this machine cannot do, and why


def _terminate_connections(database: str) -> str:
    admin = Database(PG_URL)
    try:
        total = 0
        for _ in range(3):
            with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                total += int(c.execute(text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"),
                    {"name": database}).scalar_one())
            time.sleep(0.3)
        return f"{total} connections"
    finally:
        admin.dispose()


def _spooled(db: Database) -> int:
    with db.session() as s:
        clips = s.execute(select(func.count()).select_from(Answer)
                          .where(Answer.clip_spool.is_not(None))).scalar_one()
        calls = s.execute(select(func.count()).select_from(CallAttempt)
                          .where(CallAttempt.recording_spool.is_not(None))).scalar_one()
    return int(clips) + int(calls)


def _open_work(db: Database) -> tuple[int, int]:
    """(open tasks, live attempts)."""
    with db.session() as s:
        tasks = s.execute(select(func.count()).select_from(FollowupTask).where(
            FollowupTask.status.in_([TaskStatus.PENDING, TaskStatus.CLAIMED]))).scalar_one()
        live = s.execute(select(func.count()).select_from(CallAttempt).where(
            CallAttempt.status.in_(LIVE))).scalar_one()
    return int(tasks), int(live)


def _stranded(db: Database, before: dt.datetime, now: dt.datetime,
              owners: dict[str, str]) -> list[str]:
    """Attempts begun before `before` (the last fault) still live, and claims whose lease
    expired longer than `RECLAIMED_WITHIN_S` ago, at simulated time `now` (a lease and
    `RECLAIMED_WITHIN_S` after the last fault). `owners` names the dialer incarnation of a
    lease owner ("host:pid")."""
    overdue = now - dt.timedelta(seconds=RECLAIMED_WITHIN_S)
    with db.session() as s:
        live = s.execute(select(CallAttempt, FollowupTask.lease_owner,
                                FollowupTask.lease_expires_at)
                         .join(FollowupTask, FollowupTask.id == CallAttempt.task_id)
                         .where(CallAttempt.status.in_(LIVE),
                                CallAttempt.created_at < before)).all()
        claimed = s.execute(select(FollowupTask.id, FollowupTask.lease_owner,
                                   FollowupTask.lease_expires_at).where(
            FollowupTask.status == TaskStatus.CLAIMED,
            FollowupTask.lease_expires_at < overdue)).all()
    return ([f"attempt {a.id} of task {a.task_id} still live ({_describe(a)}; lease of "
             f"{owners.get(o or '', o)} to {exp:%d %H:%M:%S}; checked at {now:%d %H:%M:%S}, "
             f"last fault {before:%d %H:%M:%S})" for a, o, exp in live]
            + [f"task {t} claimed by {owners.get(o or '', o)}, lease expired "
               f"{exp:%d %H:%M:%S}; checked at {now:%d %H:%M:%S}" for t, o, exp in claimed])


def _play(db: Database, pg_url: str, base: Path, note: Callable[[str], None]) -> FaultRun:
    """Run the scenario against the migrated, empty store `db` (at `pg_url`)."""
    skipped: list[str] = []
    restart_cmd, cluster = _local_cluster()
    if restart_cmd is None:
        skipped.append(f"PostgreSQL restart skipped: {cluster}")
    folder = RecordingsFolder(base / "recordings")
    if not folder.mounted:
        skipped.append(f"recordings folder that fills skipped: {folder.why_not}")
    for why in skipped:
        note(why)

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
        (base / f"dialer{n}").mkdir()
        dialers.append(Dialer(n, base / f"dialer{n}", env, epoch))

    rng = random.Random(20261202)
    started = time.monotonic()
    died: list[str] = []
    restarted = False
    filled_at: float | None = None
    victims: list[Dialer] = []

    def elapsed() -> float:
        return time.monotonic() - started

    def kill_ready(after_up: float) -> Callable[[], bool]:
        def ready() -> bool:
            """A dialer whose campaign has run `after_up` s, drawn at random; never just
            before the database restart (nor during the wait after it, which blocks the
            harness): a dialer gone after the restart can only have died of it."""
            if any(f.name == RESTART for f in pending) \
                    and elapsed() >= PG_RESTART_AT_S - QUIET_AROUND_RESTART_S[0]:
                return False
            up = [d for d in dialers
                  if d.up_since is not None and elapsed() - d.up_since >= after_up]
            if up:
                victims.append(rng.choice(up))
            return bool(up)
        return ready

    def kill() -> str:
        victim = victims.pop()
        victim.kill_and_restart()
        return f"dialer {victim.number} (incarnation {len(victim.procs) - 1})"

    def fill() -> str:
        nonlocal filled_at
        said = folder.fill()
        filled_at = elapsed()
        return said

    def someone_calls() -> bool:
        """Fill the folder while a dialer works (its calls spool), not while both restart."""
        return any(d.up_since is not None for d in dialers)

    def full_long_enough() -> bool:
        return filled_at is not None and elapsed() >= filled_at + ENLARGE_AT_S - FILL_AT_S

    def restart_pg() -> str:
        nonlocal restarted
        assert restart_cmd is not None
        before = [d.proc for d in dialers]
        t0 = time.monotonic()
        done = _run(restart_cmd)
        assert done.returncode == 0, f"{restart_cmd}: {done.stderr}"
        took = time.monotonic() - t0
        restarted = True
        time.sleep(QUIET_AROUND_RESTART_S[1] - 1.0)
        died.extend(f"dialer {d.number} (pid {p.pid}) exited with {p.returncode} after the "
                    "database restart" for d, p in zip(dialers, before, strict=True)
                    if p.poll() is not None and p.pid not in d.killed)
        return f"{cluster} in {took:.1f} s"

    faults = [Fault(at, "SIGKILL", kill, kill_ready(rng.uniform(*KILL_AFTER_UP_S)))
              for at in _kill_moments(rng, PG_RESTART_AT_S if restart_cmd else None)]
    faults.append(Fault(TERMINATE_AT_S, "terminated-connection burst",
                        lambda: _terminate_connections(str(make_url(pg_url).database)),
                        someone_calls))
    if restart_cmd is not None:
        faults.append(Fault(PG_RESTART_AT_S, RESTART, restart_pg))
    if folder.mounted:
        faults.append(Fault(FILL_AT_S, "recordings folder fills", fill, someone_calls))
        faults.append(Fault(ENLARGE_AT_S, "recordings folder enlarged", folder.enlarge,
                            full_long_enough, is_fault=False))
    faults.sort(key=lambda f: f.at_s)
    pending = list(faults)

    spooled_seen = 0
    stranded: list[str] | None = None
    unfinished: str | None = None
    last_fault_sim, last_fault_at, last_progress = _sim_now(epoch), 0.0, 0.0
    try:
        for d in dialers:
            d.start()
        while True:
            now = elapsed()
            for d in dialers:
                d.watch(now)
                died.extend(x for x in d.unexpected_exits() if x not in died)
            fault = next((f for f in pending if f.at_s <= now and f.ready()), None)
            if fault is not None:
                pending.remove(fault)
                if fault.is_fault:  # its start: the restart waits a while after it
                    last_fault_sim, last_fault_at = _sim_now(epoch), now
                note(f"{now:6.1f} s  {fault.name}: {fault.act()}")
                continue
            try:
                open_tasks, live = _open_work(db)
                if filled_at is not None and now < filled_at + ENLARGE_AT_S - FILL_AT_S + 10:
                    spooled_seen = max(spooled_seen, _spooled(db))
                if stranded is None and not any(f.is_fault for f in pending) \
                        and now >= last_fault_at + (LEASE_S + RECLAIMED_WITHIN_S) / SPEED:
                    owners = {f"{socket.gethostname()}:{p.pid}":
                              f"dialer {d.number} incarnation {i}"
                              for d in dialers for i, p in enumerate(d.procs, start=1)}
                    stranded = _stranded(db, last_fault_sim, _sim_now(epoch), owners)
            except StoreUnavailable:  # the restart or the burst: look again
                time.sleep(0.2)
                continue
            if now - last_progress >= PROGRESS_EVERY_S:
                last_progress = now
                note(f"{now:6.1f} s  {open_tasks} tasks open, {live} calls live")
            if not pending and stranded is not None and open_tasks == 0:
                break
            if now > CAMPAIGN_TIMEOUT_S:
                unfinished = (f"campaign not finished after {CAMPAIGN_TIMEOUT_S:.0f} s: "
                              f"{open_tasks} tasks open, {live} calls live, faults left "
                              f"{[f.name for f in pending]}")
                break
            time.sleep(0.2)
    finally:
        codes = [d.stop(timeout=120) for d in dialers]
        folder.unmount()
    wall = elapsed()

    with db.session() as s:
        attempts = list(s.execute(select(CallAttempt).order_by(CallAttempt.id)).scalars())
        tasks = {t.id: t for t in s.execute(select(FollowupTask)).scalars()}
        answers = list(s.execute(select(Answer)).scalars())
    outcomes = Counter(str(a.script_outcome or a.dial_outcome or a.status) for a in attempts)
    truth = [e for d in dialers if d.truth.exists() for e in read_truth(d.truth)]
    scripts = {sc.id: sc for sc in load_scripts(REPO / "scripts") if sc.locale == "zh-CN"}
    given = _expected_answers(truth, scripts)
    stored = {(a.attempt_id, a.script_id, a.question_id) for a in answers}
    killed = {a.id for a in attempts if _killed(a)}
    lost = [k for k in given if k not in stored]
    note(f"{wall:.0f} s wall: {len(attempts)} attempts over {len(tasks)} tasks "
         f"({len(killed)} cut off by a SIGKILL); {len(given)} answers given "
         f"({sum(1 for e in given.values() if _spoken(e))} spoken), {len(lost)} of them not "
         f"stored; {spooled_seen} files spooled while the folder was full; "
         f"exit codes {codes}; outcomes {dict(sorted(outcomes.items()))}")
    return FaultRun(
        attempts=attempts, tasks=tasks, answers=answers, truth=truth,
        scripts=scripts, logs={d.number: d.log.read_text(errors="replace") for d in dialers},
        exit_codes=codes, kills=sum(len(d.killed) for d in dialers), died=died,
        stranded=stranded, unfinished=unfinished, folder_filled=filled_at is not None,
        spooled_while_full=spooled_seen, restarted=restarted, skipped=skipped)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
        ) -> Iterator[FaultRun]:
    """The scenario, once for the module, on a fresh database dropped afterwards."""
    if not PG_URL:
        if PG_REQUIRED:
            pytest.fail("FOLLOWUP_TEST_REQUIRE_PG=1 but FOLLOWUP_TEST_PG_URL is not set")
        pytest.skip("PostgreSQL not configured: set FOLLOWUP_TEST_PG_URL (e.g. "
                    "postgresql://followup:followup@127.0.0.1/followup_test)")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")

    def note(message: str) -> None:
        """Print now, past pytest's capture (a CI log shows how the run went)."""
        if capture is not None:
            with capture.global_and_fixture_disabled():
                print(f"[call-path faults] {message}", flush=True)
        else:
            print(f"[call-path faults] {message}", flush=True)

    keep = os.environ.get("FOLLOWUP_TEST_KEEP_DB") == "1"  # for a post-mortem
    with scratch_database(PG_URL, "t_faults", keep=keep) as url:
        db = Database(url)
        try:
            db.migrate()
            yield _play(db, url, tmp_path_factory.mktemp("call-path-faults"), note)
        finally:
            db.dispose()
            if keep:
                note(f"database {make_url(url).database} kept (FOLLOWUP_TEST_KEEP_DB=1)")


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


def _spoken(entry: TruthEntry) -> bool:
    return entry.turn is TurnKind.RECORD and entry.clip is not None


def _missing(run: FaultRun, which: Callable[[TruthEntry, CallAttempt | None], bool]
             ) -> list[str]:
    """The answers given (as `which` selects) that the store does not have, described."""
    by_id = {a.id: a for a in run.attempts}
    stored = {(a.attempt_id, a.script_id, a.question_id) for a in run.answers}
    return [f"{key} ({_describe(by_id.get(key[0]))}): {entry.to_json()}"
            for key, entry in sorted(_expected_answers(run.truth, run.scripts).items())
            if which(entry, by_id.get(key[0])) and key not in stored]


def _describe(attempt: CallAttempt | None) -> str:
    if attempt is None:
        return "no such attempt"
    return (f"attempt {attempt.status.value}, {attempt.dial_outcome} / "
            f"{attempt.script_outcome}, {attempt.created_at:%d %H:%M:%S}-"
            f"{attempt.ended_at and f'{attempt.ended_at:%d %H:%M:%S}'}, "
            f"error {attempt.error!r}")


def _killed(attempt: CallAttempt | None) -> bool:
    """Cut off by a SIGKILL of its dialer (settled by a reclaim, its fate unknown)."""
    return attempt is not None and attempt.status is AttemptStatus.UNKNOWN


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


# -- the tests ------------------------------------------------------------------------------


def _none(found: list[str], what: str) -> None:
    assert not found, f"{len(found)} {what}:\n" + "\n".join(found[:15])


def test_the_faults_landed(run: FaultRun) -> None:
    assert run.kills == KILLS
    assert [a.id for a in run.attempts if _killed(a)], \
        "no SIGKILL landed during a call: the kills proved nothing"
    assert [e for e in handled_replies(run.truth) if _spoken(e)], \
        "no patient spoke an answer: the voice path went untested"
    if not any(why.startswith("recordings folder") for why in run.skipped):
        assert run.folder_filled and run.spooled_while_full, \
            "the full recordings folder spooled nothing"
    if not any(why.startswith("PostgreSQL restart") for why in run.skipped):
        assert run.restarted


def test_no_dialer_exited_but_by_our_sigkills(run: FaultRun) -> None:
    """Not on the database restart, not on the terminated connections, not on the full
    folder; and the last incarnations stop cleanly on SIGTERM."""
    _none(run.died, "dialer processes ended by themselves")
    assert run.exit_codes == [0, 0]


def test_nothing_live_or_claimed_one_lease_after_the_last_fault(run: FaultRun) -> None:
    assert run.stranded is not None, "never checked"
    _none(run.stranded, "stranded one lease after the last fault")


def test_the_campaign_finishes_with_nothing_live_or_claimed(run: FaultRun) -> None:
    assert run.unfinished is None
    assert [t.id for t in run.tasks.values()
            if t.status in (TaskStatus.PENDING, TaskStatus.CLAIMED)] == []
    assert [a.id for a in run.attempts if a.status in LIVE] == []


def test_no_patient_ever_had_two_calls_at_once(run: FaultRun) -> None:
    by_patient: dict[int, list[CallAttempt]] = defaultdict(list)
    for a in run.attempts:
        by_patient[a.patient_id].append(a)
    overlaps = []
    for patient, calls in by_patient.items():
        calls.sort(key=lambda a: (a.created_at, a.id))
        for a, b in itertools.pairwise(calls):
            if a.ended_at is None or a.ended_at > b.created_at:
                overlaps.append(f"patient {patient}: attempt {a.id} ({_describe(a)}) "
                                f"overlaps attempt {b.id} ({_describe(b)})")
    _none(overlaps, "overlapping calls")


def test_no_task_is_called_after_it_ended(run: FaultRun) -> None:
    by_task: dict[int, list[CallAttempt]] = defaultdict(list)
    for a in run.attempts:
        by_task[a.task_id].append(a)
    bad = []
    for task_id, calls in by_task.items():
        calls.sort(key=lambda a: (a.created_at, a.id))
        closed = run.tasks[task_id].closed_at
        late = [a.id for a in calls if closed is not None and a.created_at > closed]
        if late:
            bad.append(f"task {task_id} closed at {closed}: attempts {late} after it")
        finals = [a for a in calls if a.script_outcome in FINAL]
        if len(finals) > 1:
            bad.append(f"task {task_id} ended twice: {[_describe(a) for a in finals]}")
        elif finals and finals[0] is not calls[-1]:
            bad.append(f"task {task_id} ended with attempt {finals[0].id} and was called "
                       f"again: {[_describe(a) for a in calls[calls.index(finals[0]):]]}")
    _none(bad, "tasks called after they ended")


def test_no_patient_is_dialled_more_than_the_daily_cap(run: FaultRun) -> None:
    per_day: Counter[tuple[int, dt.date]] = Counter()
    for a in run.attempts:
        if a.dialled:
            per_day[(a.patient_id, a.created_at.astimezone(PATIENT_TZ).date())] += 1
    _none([f"patient {p} dialled {n} times on {day}" for (p, day), n in per_day.items()
           if n > CAP], "cap breaches")


def test_every_keypad_answer_given_is_stored(run: FaultRun) -> None:
    """Keys, and the unanswered row after the last try, against the truth logs."""
    _none(_missing(run, lambda entry, _attempt: not _spoken(entry)), "answers lost")


def test_every_spoken_answer_given_is_stored(run: FaultRun) -> None:
    """Voice answers (kept untranscribed: no speech model here), through the restart, the
    terminated connections, the full folder and the SIGKILLs (a spoken answer is stored
    before the call moves on, tests/unit/ivr/test_voice_answer_durability.py)."""
    _none(_missing(run, lambda entry, _attempt: _spoken(entry)), "spoken answers lost")


def test_every_clip_and_recording_is_filed_once_the_folder_has_room(run: FaultRun) -> None:
    assert [a.id for a in run.answers if a.clip_spool is not None] == []
    assert [a.id for a in run.attempts if a.recording_spool is not None] == []
    assert [a.id for a in run.answers
            if a.source is AnswerSource.VOICE and a.recording_id is None] == []


def test_no_dialer_logged_a_traceback(run: FaultRun) -> None:
    assert {n: _tracebacks(log) for n, log in run.logs.items()} == {1: [], 2: []}
