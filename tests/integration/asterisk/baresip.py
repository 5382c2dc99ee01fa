"""baresip as an agent's softphone: registers, answers by itself, hangs up when told.

It plays an 8 kHz WAV into the call (`aufile` source; baresip 1.0's `ausine` only does
48 kHz and its failure to start resets the call); commands go over its `ctrl_tcp` socket as
netstrings of JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

MODULES = Path("/usr/lib/baresip/modules")


class Baresip:
    def __init__(self, binary: str, work: Path, user: str, password: str, registrar_port: int,
                 sip_port: int, ctrl_port: int, say: Path) -> None:
        self.dir = work / f"baresip-{user}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ctrl_port = ctrl_port
        (self.dir / "config").write_text(
            "poll_method epoll\n"
            f"sip_listen 127.0.0.1:{sip_port}\n"
            f"audio_player aufile,{self.dir / 'heard.wav'}\n"
            f"audio_source aufile,{say}\n"
            f"audio_alert aufile,{self.dir / 'alert.wav'}\n"
            f"module_path {MODULES}\n"
            "module g711.so\nmodule aufile.so\nmodule ctrl_tcp.so\n"
            "module_app account.so\nmodule_app menu.so\n"
            f"ctrl_tcp_listen 127.0.0.1:{ctrl_port}\n")
        (self.dir / "accounts").write_text(
            f"<sip:{user}@127.0.0.1:{registrar_port}>;auth_pass={password};"
            "answermode=auto;regint=300\n")
        (self.dir / "contacts").write_text("")
        self.log = self.dir / "out.log"
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen([binary, "-f", str(self.dir)], cwd=self.dir,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.log.open("w", encoding="utf-8") as log:
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace")
                log.write(line)
                log.flush()
                with self._lock:
                    self._lines.append(line)

    def saw(self, text: str) -> bool:
        with self._lock:
            return any(text in line for line in self._lines)

    def wait_for(self, text: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.saw(text):
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.1)
        return False

    def command(self, name: str, params: str = "") -> None:
        body = json.dumps({"command": name, "params": params, "token": "t"}).encode()
        with socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=5) as s:
            s.sendall(str(len(body)).encode() + b":" + body + b",")
            with contextlib.suppress(TimeoutError):
                s.recv(4096)

    def output(self) -> str:
        with self._lock:
            return "".join(self._lines)[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def hang_up_after_answer(phone: Baresip, talk_s: float, timeout_s: float) -> threading.Thread:
    """In the background: once the phone has answered, talk `talk_s`, then hang up."""
    def run() -> None:
        if phone.wait_for("answering call", timeout_s):
            time.sleep(talk_s)
            phone.command("hangup")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread
