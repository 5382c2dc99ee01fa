"""The recording store: content-addressed files, sha256 verified on every read.

A recording's bytes live at `<root>/<aa>/<bb>/<sha256>.wav` (`.wav.enc` when encrypted);
the row in `recordings` links it to its attempt. Reading verifies the sha256 and never returns
bytes that fail it: the caller gets `RecordingIntegrityError` and the failure is audited.
Every playback and download is an audit event (who, when, which).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from sqlalchemy.orm import Session

from core.audit import AuditLog
from core.clock import Clock
from core.enums import RecordingKind
from core.errors import FollowupError, NotFound
from core.store.models import Recording
from recordings.cipher import DecryptionFailed, RecordingCipher
from recordings.wavinfo import probe_wav


class RecordingIntegrityError(FollowupError):
    """The stored bytes no longer match their sha256 (or are missing): never served."""

    code = "recording_integrity"


class AccessKind(StrEnum):
    PLAY = "recording.play"
    DOWNLOAD = "recording.download"


@dataclass(frozen=True, slots=True)
class StoredRecording:
    id: int
    sha256: str
    path: Path
    bytes: int
    duration_ms: int
    codec: str


class RecordingStore:
    """Files recordings and serves them back, verified and audited."""

    def __init__(self, root: Path, clock: Clock, audit: AuditLog,
                 cipher: RecordingCipher | None = None) -> None:
        self.root = root
        self._clock = clock
        self._audit = audit
        self._cipher = cipher

    def _path_for(self, sha256: str) -> Path:
        suffix = ".wav.enc" if self._cipher else ".wav"
        return self.root / sha256[:2] / sha256[2:4] / f"{sha256}{suffix}"

    def file_bytes(self, session: Session, data: bytes, *, kind: RecordingKind,
                   attempt_id: int | None, department_id: int | None) -> StoredRecording:
        """Store `data` (WAV bytes) and add its row in the caller's transaction."""
        sha = hashlib.sha256(data).hexdigest()
        path = self._path_for(sha)
        if not path.exists():
            blob = self._cipher.encrypt(data, sha.encode()) if self._cipher else data
            path.parent.mkdir(parents=True, exist_ok=True)
            # write-then-rename: a crash never leaves a half file under the final name
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(blob)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except OSError:
                Path(tmp).unlink(missing_ok=True)  # a full disk leaves no half file behind
                raise
        info = probe_wav(data)
        row = Recording(attempt_id=attempt_id, department_id=department_id, kind=kind,
                        path=str(path.relative_to(self.root)), sha256=sha, bytes=len(data),
                        duration_ms=info.duration_ms, codec=info.codec,
                        encrypted=self._cipher is not None, created_at=self._clock.now())
        session.add(row)
        session.flush()
        return StoredRecording(row.id, sha, path, len(data), info.duration_ms, info.codec)

    def file_path(self, session: Session, source: Path, *, kind: RecordingKind,
                  attempt_id: int | None, department_id: int | None) -> StoredRecording:
        """Store the file at `source` (e.g. a MixMonitor WAV); the source is left in place
        until the caller's transaction has committed (then `discard_source`).
        Raises OSError when the store's folder cannot be written (full, read-only)."""
        return self.file_bytes(session, source.read_bytes(), kind=kind, attempt_id=attempt_id,
                               department_id=department_id)

    def discard_source(self, source: Path, stored: StoredRecording) -> bool:
        """Remove a spooled original (MixMonitor file, answer clip) once its stored copy
        reads back with the same sha256. Call after the row's transaction committed.
        Returns whether the source was removed; a copy that does not verify keeps it."""
        try:
            blob = stored.path.read_bytes()
            data = self._cipher.decrypt(blob, stored.sha256.encode()) if self._cipher else blob
        except (OSError, DecryptionFailed):
            return False
        if hashlib.sha256(data).hexdigest() != stored.sha256:
            return False
        source.unlink(missing_ok=True)
        return True

    def read(self, session: Session, recording_id: int, *, actor: str,
             access: AccessKind = AccessKind.PLAY) -> bytes:
        """The verified bytes of a recording; the access is written to the audit log.

        Raises NotFound (no row, or purged) and RecordingIntegrityError (missing file, bytes
        changed, or undecryptable) — the latter is audited as `recording.integrity_failed`.
        """
        row = session.get(Recording, recording_id)
        if row is None or row.purged_at is not None:
            raise NotFound(f"recording {recording_id} not found")
        problem = ""
        data = b""
        try:
            blob = (self.root / row.path).read_bytes()
            data = self._cipher.decrypt(blob, row.sha256.encode()) if row.encrypted and \
                self._cipher else blob
            if row.encrypted and self._cipher is None:
                problem = "encrypted but no key configured"
            elif hashlib.sha256(data).hexdigest() != row.sha256:
                problem = "sha256 mismatch: the bytes were changed"
        except FileNotFoundError:
            problem = "file missing"
        except DecryptionFailed as exc:
            problem = exc.message
        if problem:
            self._audit.append(session, actor, "recording.integrity_failed", "recording",
                               recording_id, {"problem": problem, "sha256": row.sha256})
            session.commit()
            raise RecordingIntegrityError(f"recording {recording_id}: {problem}")
        self._audit.append(session, actor, access.value, "recording", recording_id,
                           {"sha256": row.sha256, "attempt_id": row.attempt_id})
        return data

    def verify(self, session: Session, recording_id: int) -> str | None:
        """None if the recording is intact, else what is wrong (no audit: a sweep, not a read)."""
        row = session.get(Recording, recording_id)
        if row is None or row.purged_at is not None:
            return None
        try:
            blob = (self.root / row.path).read_bytes()
            data = self._cipher.decrypt(blob, row.sha256.encode()) if row.encrypted and \
                self._cipher else blob
        except FileNotFoundError:
            return "file missing"
        except DecryptionFailed as exc:
            return exc.message
        if hashlib.sha256(data).hexdigest() != row.sha256:
            return "sha256 mismatch"
        return None
