"""The preflight, as a user meets it: `followup doctor`, and `demo`, `run` and `console`
refusing to start with one plain line per missing part (never a traceback)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def followup(*args: str, path: str | None = None, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLLOWUP_")}
    env["PYTHONPATH"] = str(REPO)
    if path is not None:
        env["PATH"] = path
    return subprocess.run([sys.executable, "-c", "from engine.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=120,
                          check=False)


def _path_without(tmp_path: Path, *hidden: str) -> str:
    """A PATH holding the tools the engine uses, except `hidden`."""
    shown = tmp_path / "bin"
    shown.mkdir()
    for tool in ("sox", "ffmpeg", "espeak-ng"):
        found = shutil.which(tool)
        if found and tool not in hidden:
            (shown / tool).symlink_to(found)
    return str(shown)


def _no_traceback(out: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in out.stderr + out.stdout


@pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None,
                    reason="needs espeak-ng and sox to show that hiding one is noticed")
def test_the_demo_stops_before_calling_when_espeak_is_missing(tmp_path: Path) -> None:
    out = followup("--data-dir", str(tmp_path / "var"), "demo", "--patients", "10",
                   "--days", "1", "--no-console", path=_path_without(tmp_path, "espeak-ng"),
                   cwd=tmp_path)
    _no_traceback(out)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert any("espeak-ng is not installed" in ln and "apt-get install espeak-ng" in ln
               for ln in lines)
    assert lines[-1].startswith("error [preflight]:")
    assert not (tmp_path / "var" / "his.sqlite").exists()  # nothing was started
    assert "synthetic HIS" not in out.stdout


def test_doctor_names_each_part_and_the_fix(tmp_path: Path) -> None:
    out = followup("--data-dir", str(tmp_path / "var"), "doctor", cwd=tmp_path)
    _no_traceback(out)
    assert out.returncode == 1  # the store was never initialised
    assert "run `followup init`" in out.stdout
    assert "recordings:" in out.stdout
    assert followup("--data-dir", str(tmp_path / "var"), "init", cwd=tmp_path).returncode == 0
    again = followup("--data-dir", str(tmp_path / "var"), "doctor", cwd=tmp_path)
    assert "PROBLEM  database" not in again.stdout


def test_run_refuses_a_store_that_is_not_initialised(tmp_path: Path) -> None:
    out = followup("--data-dir", str(tmp_path / "var"), "run", "--no-jobs", cwd=tmp_path)
    _no_traceback(out)
    assert out.returncode == 2 and "run `followup init`" in out.stderr


def test_the_console_refuses_a_busy_port_and_says_who_holds_it(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        out = followup("--data-dir", str(tmp_path / "var"), "console", "--port", str(port),
                       cwd=tmp_path)
    _no_traceback(out)
    assert out.returncode == 2
    assert f"127.0.0.1:{port} is taken" in out.stderr
    assert f"held by PID {os.getpid()}" in out.stderr


@pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None,
                    reason="the demo calls: it needs espeak-ng and sox")
def test_the_demo_shares_the_clis_folder_and_never_wipes_a_store_it_did_not_make(
        tmp_path: Path) -> None:
    small = ("demo", "--patients", "10", "--days", "1", "--no-console")
    made = followup(*small, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    listed = followup("tasks", cwd=tmp_path)  # the CLI's default folder is the demo's
    assert listed.returncode == 0 and "error" not in listed.stderr, listed.stderr
    assert followup(*small, cwd=tmp_path).returncode == 0  # an earlier demo: replaced
    hospital = tmp_path / "hospital"
    assert followup("--data-dir", str(hospital), "init", cwd=tmp_path).returncode == 0
    refused = followup("--data-dir", str(hospital), *small, cwd=tmp_path)
    _no_traceback(refused)
    assert refused.returncode == 2 and "did not make" in refused.stderr
    assert (hospital / "followup.sqlite").stat().st_size > 0


def test_the_daemon_warns_when_the_hl7_feeds_port_is_taken(tmp_path: Path) -> None:
    from core.settings import HisSettings, Settings
    from engine import doctor

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        settings = Settings(data_dir=str(tmp_path),
                            his=HisSettings(hl7_listen=True, hl7_port=port))
        found = {f.part: f for f in doctor.check(settings, calls=False, store_ready=False,
                                                 daemon=True)}
    feed = found["HL7 feed port"]
    assert not feed.ok and not feed.blocks  # the dialer starts; the feed's failure is logged
    assert f"127.0.0.1:{port} is taken" in feed.detail and "his.hl7_port" in feed.fix


def test_the_daemon_warns_when_a_fixed_wallboard_feed_port_is_taken(tmp_path: Path) -> None:
    from core.settings import DialerSettings, Settings
    from engine import doctor

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        taken = Settings(data_dir=str(tmp_path), dialer=DialerSettings(live_feed_port=port))
        found = {f.part: f for f in doctor.check(taken, calls=False, store_ready=False,
                                                 daemon=True)}
        anyport = {f.part for f in doctor.check(Settings(data_dir=str(tmp_path)), calls=False,
                                                store_ready=False, daemon=True)}
    feed = found["wallboard feed port"]
    assert not feed.ok and not feed.blocks  # the dialer starts; the wallboard misses it
    assert f"127.0.0.1:{port} is taken" in feed.detail and "live_feed_port" in feed.fix
    assert "wallboard feed port" not in anyport  # port 0: any free one, nothing to check


def test_doctor_checks_every_asterisk_server_and_one_away_does_not_block(
        tmp_path: Path) -> None:
    import asyncio
    import threading

    from core.settings import load_settings
    from dialer.asterisk.fake_ami import FakeAmiServer
    from engine.doctor import check

    loop = asyncio.new_event_loop()
    fake = FakeAmiServer({}, secret="s1")
    loop.run_until_complete(fake.start())
    serving = threading.Thread(target=loop.run_forever, daemon=True)
    serving.start()
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        away = probe.getsockname()[1]
    settings = load_settings(environ={}, overrides={
        "data_dir": str(tmp_path), "dialer": {"backend": "asterisk"},
        "asterisk": {"recording_dir": str(tmp_path), "clip_dir": str(tmp_path), "servers": [
            {"name": "ast1", "ami_port": fake.port, "ami_secret": "s1"},
            {"name": "ast2", "ami_port": away, "ami_secret": "s2"}]}})
    try:
        found = {f.part: f for f in check(settings, store_ready=False)}
    finally:
        loop.call_soon_threadsafe(loop.stop)
        serving.join(5)
        loop.run_until_complete(fake.close())
        loop.close()
    assert found["asterisk AMI ast1"].ok
    assert not found["asterisk AMI ast2"].ok and not found["asterisk AMI ast2"].blocks
    assert f"127.0.0.1:{away}" in found["asterisk AMI ast2"].detail
