"""The wallboard and campaign control against a real `followup run` (sim backend) and a
real `followup console`, in headless Chromium (zh-CN): the calls in progress change on the
page without a reload; pausing cardiology stops new cardiology calls within 5 s while
orthopaedics goes on; resuming restarts them. The store is the judge: the test counts each
department's attempts itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.clock import SystemClock
from core.store.db import Database
from tests.browser.test_console_browser import browser  # noqa: F401 - the fixture
from tests.integration.dialer_seed import FAST_ENV, attempts_by_department, seed_due_tasks
from tests.unit.console.server import free_port

pytestmark = pytest.mark.browser

FOLLOWUP = [sys.executable, "-c", "from engine.cli import main; main()"]
REPO = Path(__file__).resolve().parents[2]
PASSWORD = "wallboard-pass-123"
OBEY_S = 5.0  # the promise: a pause is obeyed within 5 s


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[str, Database, list[subprocess.Popen[bytes]]]]:
    data = tmp_path / "var"
    url = f"sqlite:///{data / 'followup.sqlite'}"
    env = {**os.environ, **FAST_ENV, "FOLLOWUP_DATABASE__URL": url,
           "FOLLOWUP_DIALER__MAX_CHANNELS": "8", "FOLLOWUP_DIALER__CALLS_PER_SECOND": "4",
           "FOLLOWUP_CONSOLE__SECRET_KEY": "w" * 48}
    env.pop("FOLLOWUP_CONFIG", None)

    def followup(*args: str) -> None:
        done = subprocess.run([*FOLLOWUP, "--data-dir", str(data), *args], cwd=REPO, env=env,
                              input=b"", capture_output=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr.decode()

    followup("init")
    db = Database(url)
    seed_due_tasks(db, 600, SystemClock().now(), departments=2)
    followup("users", "add", "zhuguan", "--role", "supervisor", "--name", "值班主管",
             "--department", "CARD", "--password", PASSWORD)
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    logs = {name: (tmp_path / f"{name}.log").open("ab") for name in ("run", "console")}
    procs.append(subprocess.Popen([*FOLLOWUP, "--data-dir", str(data), "run", "--no-jobs",
                                   "--speed", "10"], cwd=REPO, env=env,
                                  stdout=logs["run"], stderr=subprocess.STDOUT))
    procs.append(subprocess.Popen([*FOLLOWUP, "--data-dir", str(data), "console", "--port",
                                   str(port)], cwd=REPO, env=env,
                                  stdout=logs["console"], stderr=subprocess.STDOUT))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(base + "/login", timeout=2):
                break
        except OSError:
            assert time.monotonic() < deadline, (tmp_path / "console.log").read_text()
            time.sleep(0.3)
    try:
        yield base, db, procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
        for fh in logs.values():
            fh.close()
        db.dispose()
        run_log = (tmp_path / "run.log").read_text()
        assert "Traceback" not in run_log, run_log[-3000:]


def test_pausing_cardiology_from_the_wallboard(browser: Any,  # noqa: F811
                                               running: tuple[str, Database, Any]) -> None:
    base, db, procs = running
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.goto(base + "/")
    page.fill("input[name=username]", "zhuguan")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#wallboard")
    page.evaluate("window.__loadedOnce = true")
    page.wait_for_selector("#wb-status[data-state=live]", timeout=15_000)
    # the calls in progress change on the page while it stays loaded
    seen: set[str] = set()
    deadline = time.monotonic() + 30
    while len(seen) < 3 and time.monotonic() < deadline:
        seen.add(page.inner_text("#wb-by-dept tbody"))
        time.sleep(0.5)
    assert len(seen) >= 3, seen
    assert page.evaluate("window.__loadedOnce") is True  # no reload happened
    assert "心内科" in page.inner_text("#wb-by-dept") and "骨科" not in page.inner_text(
        "#wb-by-dept")  # a cardiology supervisor sees cardiology's calls only
    assert all(p.poll() is None for p in procs)
    shots = Path(os.environ.get("FOLLOWUP_TEST_SCREENSHOTS", "/tmp"))
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "wallboard_live.png"), full_page=True)

    page.select_option("#pause-form select[name=scope]", "department")
    page.select_option("#pause-form select[name=department]", "CARD")
    page.fill("#pause-form input[name=reason]", "科室晨会")
    page.click("#pause-form button[type=submit]")
    page.wait_for_selector("#wb-holds li[data-scope=department]")
    paused_at = time.monotonic()
    time.sleep(OBEY_S)
    after_obey = attempts_by_department(db)
    time.sleep(8.0)
    later = attempts_by_department(db)
    assert later.get(1, 0) == after_obey.get(1, 0), (after_obey, later)  # no new CARD call
    assert later.get(2, 0) > after_obey.get(2, 0), (after_obey, later)  # ORTH goes on
    assert time.monotonic() - paused_at < OBEY_S + 30
    page.wait_for_selector("#wb-by-dept td.paused", timeout=20_000)
    page.screenshot(path=str(shots / "wallboard_paused.png"), full_page=True)

    page.click("#wb-holds li[data-scope=department] button[type=submit]")
    page.wait_for_selector("#wb-holds li.none")
    resumed = attempts_by_department(db)
    deadline = time.monotonic() + 15
    while attempts_by_department(db).get(1, 0) == resumed.get(1, 0):
        assert time.monotonic() < deadline, "cardiology calls did not restart"
        time.sleep(0.5)
    context.close()
