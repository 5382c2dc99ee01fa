"""A throwaway Asterisk for a test module: configs from `followup asterisk render`, every
writable directory under a pytest tmp dir, 127.0.0.1 only, free (non-default) ports.

The binary is found through FOLLOWUP_ASTERISK__BINARY, the `asterisk.binary` setting, or
PATH; without one (or without `sipp`) the tier is skipped with the reason. The process runs
in its own process group and is killed with it on teardown, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.errors import ConfigError
from core.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[3]
SCRIPTS = Path(__file__).resolve().parent / "scripts"
AMI_SECRET = "it-ami-secret"
# the tier's own witness on AMI (`ami_observer`): read-only, with the dtmf class the
# engine's user does not need
OBSERVER_USER = "it-observer"
OBSERVER_SECRET = "it-observer-secret"
AGENT_SECRET = "it-agent-secret"
AGENT = "2001"
ORIGINATE_TIMEOUT_S = 6
CALLBACK_NUMBER = "5550199"  # what a voicemail message asks the patient to call

# Modules that would open ports of their own (or need config this tier does not write).
def find_binary(name: str, setting: str = "") -> str | None:
    if setting:
        return setting if os.access(setting, os.X_OK) else None
    return shutil.which(name)


def asterisk_binary() -> str | None:
    env = os.environ.get("FOLLOWUP_ASTERISK__BINARY", "")
    if env:
        return env if os.access(env, os.X_OK) else None
    try:
        configured = load_settings().asterisk.binary
    except ConfigError:
        configured = ""
    return find_binary("asterisk", configured)


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Ports:
    ami: int
    agi: int
    sip: int
    trunk: int  # where the "carrier" (a SIPp patient) listens
    agent: int  # the agent's SIPp phone
    rtp_start: int


@dataclass
class AsteriskServer:
    binary: str
    sipp: str
    root: Path
    conf: Path
    ports: Ports
    toml: Path
    proc: subprocess.Popen[bytes]

    def cli(self, command: str, timeout_s: float = 15) -> str:
        out = subprocess.run([self.binary, "-C", str(self.conf / "asterisk.conf"), "-rx",
                              command], capture_output=True, timeout=timeout_s, check=False)
        return out.stdout.decode(errors="replace")

    def log_tail(self, chars: int = 6000) -> str:
        path = self.root / "log" / "messages.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    def settings(self, store_dir: Path) -> Settings:
        """The engine's settings for this Asterisk (the same file the configs came from),
        with the store and recordings in `store_dir`; the data dir (prompt cache) is the
        module's, so prompts are synthesised once."""
        return load_settings(self.toml, environ={}, overrides=self.store_overrides(store_dir))

    @staticmethod
    def store_overrides(store_dir: Path) -> dict[str, Any]:
        return {"database": {"url": f"sqlite:///{store_dir / 'followup.sqlite'}"},
                "recordings": {"dir": str(store_dir / "recordings")}}

    def hang_up_everything(self) -> None:
        """No call of a failed test may linger into the next one."""
        self.cli("channel request hangup all")


def _toml(root: Path, ports: Ports) -> str:
    return f"""\
data_dir = "{root / 'engine'}"

[hospital]
name = "Demo Hospital"
name_en = "Demo Hospital"
default_language = "en-US"
default_timezone = "UTC"
calling_hours = "00:00-24:00"
nurse_hours = "00:00-24:00"
callback_number = "{CALLBACK_NUMBER}"

[scripts]
dir = "{SCRIPTS}"

[tts]
engine = {{"en-US" = "espeak-ng"}}

[speech]
models = {{}}

[dialer]
backend = "asterisk"
max_channels = 2
calls_per_second = 5

[asterisk]
ami_host = "127.0.0.1"
ami_port = {ports.ami}
ami_secret = "{AMI_SECRET}"
agi_host = "127.0.0.1"
agi_port = {ports.agi}
sip_bind = "127.0.0.1:{ports.sip}"
trunk = "carrier"
trunk_host = "127.0.0.1"
trunk_port = {ports.trunk}
caller_id = "5550100"
originate_timeout_s = {ORIGINATE_TIMEOUT_S}
agents = ["{AGENT}", "2002"]
nurses = ["2101"]
agent_secret = "{AGENT_SECRET}"
recording_dir = "{root / 'spool' / 'monitor'}"
clip_dir = "{root / 'spool' / 'clips'}"
queue_timeout_s = 25
rtp_start = {ports.rtp_start}
rtp_end = {ports.rtp_start + 400}
"""


def _directories(root: Path, binary: str, etc: Path) -> str:
    """The [directories] of this tier's Asterisk (its own, under `root`), for the end of
    the rendered asterisk.conf."""
    prefix = Path(binary).resolve().parent.parent
    moddir = prefix / "lib" / "asterisk" / "modules"
    datadir = prefix / "var" / "lib" / "asterisk"  # read only: documentation, nothing more
    d = {name: root / name for name in ("lib", "spool", "run", "log", "agi-bin", "keys")}
    d["etc"] = etc
    return (
        "\n[directories]\n"
        f"astetcdir => {d['etc']}\nastmoddir => {moddir}\nastvarlibdir => {d['lib']}\n"
        f"astdbdir => {d['lib']}\nastkeydir => {d['keys']}\nastdatadir => {datadir}\n"
        f"astagidir => {d['agi-bin']}\nastspooldir => {d['spool']}\n"
        f"astrundir => {d['run']}\nastlogdir => {d['log']}\n"
        f"astsbindir => {Path(binary).resolve().parent}\n")


def tier_tools() -> tuple[str, str]:
    """The Asterisk and SIPp binaries; the test is skipped, with the reason, without them
    (or without espeak-ng and sox for the prompts)."""
    binary = asterisk_binary()
    if binary is None:
        pytest.skip("no Asterisk binary: set FOLLOWUP_ASTERISK__BINARY or put asterisk on "
                    "PATH")
    sipp = shutil.which("sipp")
    if sipp is None:
        pytest.skip("no sipp on PATH (Debian package sip-tester): the tier's patients and "
                    "agents are SIPp scenarios")
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("espeak-ng and sox are needed to synthesise the IVR's prompts")
    return binary, sipp


@pytest.fixture(scope="module")
def asterisk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsteriskServer]:
    binary, sipp = tier_tools()
    root = tmp_path_factory.mktemp("asterisk")
    prepare_dirs(root)
    ports = Ports(ami=free_port(socket.SOCK_STREAM), agi=free_port(socket.SOCK_STREAM),
                  sip=free_port(socket.SOCK_DGRAM), trunk=free_port(socket.SOCK_DGRAM),
                  agent=free_port(socket.SOCK_DGRAM), rtp_start=31000 + os.getpid() % 20 * 400)
    toml = root / "followup.toml"
    toml.write_text(_toml(root, ports))
    etc = root / "etc"
    render_config(toml, etc)
    finish_rendered(etc, root, binary)
    server = AsteriskServer(binary, sipp, root, etc, ports, toml, launch(binary, root, etc))
    try:
        wait_booted(server)
        yield server
    finally:
        stop(server)


def prepare_dirs(root: Path) -> None:
    """The writable folders of one tier server under `root`."""
    for sub in ("etc", "lib", "spool/monitor", "spool/clips", "run", "log", "agi-bin", "keys",
                "engine", "sipp"):
        (root / sub).mkdir(parents=True, exist_ok=True)


def finish_rendered(etc: Path, root: Path, binary: str) -> None:
    """The rendered files as a dedicated server gets them (modules.conf loads only what the
    engine uses), with this tier's own directories and AMI witness."""
    with (etc / "asterisk.conf").open("a") as conf:
        conf.write(_directories(root, binary, etc))
    with (etc / "manager.conf").open("a") as manager:
        manager.write(f"\n[{OBSERVER_USER}]\nsecret={OBSERVER_SECRET}\n"
                      "deny=0.0.0.0/0.0.0.0\npermit=127.0.0.1/255.255.255.255\n"
                      "read=call,dtmf\nwrite=\n")


def render_config(toml: Path, out: Path) -> None:
    """`followup asterisk render --out out` for the settings in `toml`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLLOWUP_")}
    rendered = subprocess.run(
        [sys.executable, "-c", "from engine.cli import main; main()", "--config", str(toml),
         "asterisk", "render", "--out", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr


def launch(binary: str, root: Path, etc: Path) -> subprocess.Popen[bytes]:
    """Start Asterisk in the foreground of its own process group (console to a file)."""
    with (root / "console.out").open("ab") as console:
        return subprocess.Popen([binary, "-f", "-C", str(etc / "asterisk.conf")], cwd=root,
                                stdout=console, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def wait_booted(server: AsteriskServer) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError("asterisk exited at start:\n" + (
                server.root / "console.out").read_text(errors="replace")[-4000:])
        if (server.root / "run" / "asterisk.ctl").exists():
            out = subprocess.run([server.binary, "-C", str(server.conf / "asterisk.conf"),
                                  "-rx", "core waitfullybooted"], capture_output=True,
                                 timeout=60, check=False)
            if out.returncode == 0 and b"fully booted" in out.stdout.lower():
                return
        time.sleep(0.2)
    raise AssertionError("asterisk did not boot in 60 s:\n" + server.log_tail())


def stop(server: AsteriskServer) -> None:
    if server.proc.poll() is None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.cli("core stop now", timeout_s=10)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait(timeout=10)
