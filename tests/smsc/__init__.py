"""Starting the real SMPP server (smpp.twisted3, see smsc_server.py) for tests and benches.

It runs from its own virtualenv, `.venv-smsc` at the repository root (`.ci/run` makes it:
`python3 -m venv .venv-smsc && .venv-smsc/bin/pip install smpp.twisted3==0.8`), or from the
interpreter named by FOLLOWUP_TEST_SMSC_PYTHON. `smsc_unavailable()` says why it cannot
start, for a skip with the reason.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SERVER = Path(__file__).with_name("smsc_server.py")
SYSTEM_ID = "followup"
PASSWORD = "secret"
INSTALL = "python3 -m venv .venv-smsc && .venv-smsc/bin/pip install smpp.twisted3==0.8"


def smsc_python() -> Path:
    named = os.environ.get("FOLLOWUP_TEST_SMSC_PYTHON")
    return Path(named) if named else REPO / ".venv-smsc" / "bin" / "python"


def smsc_unavailable() -> str | None:
    """None when the server can start, else the reason (for a printed skip)."""
    python = smsc_python()
    if not python.exists():
        return f"no SMPP server: {python} missing (install it: {INSTALL})"
    probe = subprocess.run([str(python), "-c", "import smpp.twisted.server"],
                           capture_output=True, text=True, timeout=60, check=False)
    if probe.returncode != 0:
        return f"no SMPP server: smpp.twisted3 does not import ({probe.stderr.strip()[-200:]})"
    return None


@dataclass
class Smsc:
    """A running server: its SMPP port and its control port."""

    process: subprocess.Popen[str]
    smpp_port: int
    control_port: int

    def control(self, **order: Any) -> dict[str, Any]:
        """One order to the server's control port (see smsc_server.py); its answer."""
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=5) as conn:
            conn.sendall(json.dumps(order).encode() + b"\n")
            answer = b""
            while not answer.endswith(b"\n"):
                chunk = conn.recv(4096)
                if not chunk:
                    break
                answer += chunk
        result: dict[str, Any] = json.loads(answer)
        if not result.get("ok"):
            raise RuntimeError(f"SMSC refused {order}: {result}")
        return result


@contextmanager
def running_smsc(dlr_delay: float = 0.05) -> Iterator[Smsc]:
    """Start the server on free loopback ports; stop it afterwards."""
    process = subprocess.Popen(
        [str(smsc_python()), str(SERVER), "--system-id", SYSTEM_ID, "--password", PASSWORD,
         "--dlr-delay", str(dlr_delay)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # READY smpp=P control=C (or EOF if it died)
        if not line.startswith("READY"):
            raise RuntimeError(f"the SMPP server did not start (exit {process.poll()})")
        ports = dict(item.split("=") for item in line.split()[1:])
        yield Smsc(process, int(ports["smpp"]), int(ports["control"]))
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
