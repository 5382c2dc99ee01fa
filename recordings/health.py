"""Is a recordings folder fit to take tonight's calls? Writable, and with room left.

The dialer asks before it claims work (a folder that fails pauses calling, instead of
failing calls), and the preflight asks at start.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

DEFAULT_MIN_FREE_BYTES = 64 * 1024 * 1024


def folder_problem(path: Path, min_free_bytes: int = DEFAULT_MIN_FREE_BYTES) -> str | None:
    """None when `path` can take recordings now, else what is wrong, in one line."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        stats = os.statvfs(path)
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    free = stats.f_bavail * stats.f_frsize
    if free < min_free_bytes:
        mib = 1024 * 1024
        return f"{path}: only {free // mib} MiB free (needs {min_free_bytes // mib})"
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-") as fh:
            fh.write(b"\0" * 4096)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        return f"{path}: cannot write ({exc.strerror or exc})"
    return None
