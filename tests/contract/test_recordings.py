"""Recording store: integrity on read, audit on every playback, encryption, retention."""

from __future__ import annotations

import datetime as dt
import io
import math
import struct
import wave
from pathlib import Path

import pytest
from sqlalchemy import select

from core.audit import AuditLog, verify_chain
from core.clock import FakeClock
from core.enums import RecordingKind
from core.errors import NotFound
from core.store.db import Database
from core.store.models import AuditEntry, Department, Recording
from recordings.cipher import RecordingCipher
from recordings.retention import purge_expired
from recordings.store import AccessKind, RecordingIntegrityError, RecordingStore
from tests.audit_key import TEST_AUDIT_KEY


def _wav(seconds: float, freq: float = 440.0) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        n = int(8000 * seconds)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i
                                                                        / 8000)))
                               for i in range(n)))
    return buf.getvalue()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> RecordingStore:
    return RecordingStore(tmp_path / "rec", clock, AuditLog(clock, TEST_AUDIT_KEY))


def test_file_and_play_is_verified_and_audited(db: Database, store: RecordingStore) -> None:
    audio = _wav(1.5)
    with db.session() as s:
        rec = store.file_bytes(s, audio, kind=RecordingKind.CALL, attempt_id=None,
                               department_id=None)
    assert rec.duration_ms == 1500 and rec.codec == "pcm_s16le/8000/1"
    assert rec.path.name == f"{rec.sha256}.wav"
    with db.session() as s:
        assert store.read(s, rec.id, actor="supervisor1") == audio
        store.read(s, rec.id, actor="supervisor1", access=AccessKind.DOWNLOAD)
    with db.session() as s:
        events = s.execute(select(AuditEntry.actor, AuditEntry.action, AuditEntry.object_id)
                           .order_by(AuditEntry.id)).all()
        assert [tuple(e) for e in events] == [
            ("supervisor1", "recording.play", str(rec.id)),
            ("supervisor1", "recording.download", str(rec.id)),
        ]
        assert verify_chain(s, TEST_AUDIT_KEY).ok


def test_changed_bytes_are_never_served(db: Database, store: RecordingStore) -> None:
    with db.session() as s:
        rec = store.file_bytes(s, _wav(0.5), kind=RecordingKind.CALL, attempt_id=None,
                               department_id=None)
    raw = bytearray(rec.path.read_bytes())
    raw[-10] ^= 0xFF
    rec.path.write_bytes(bytes(raw))
    with db.session() as s:
        assert store.verify(s, rec.id) == "sha256 mismatch"
        with pytest.raises(RecordingIntegrityError, match="sha256"):
            store.read(s, rec.id, actor="sup")
    with db.session() as s:
        actions = s.execute(select(AuditEntry.action)).scalars().all()
        assert actions == ["recording.integrity_failed"]


def test_missing_file_is_an_integrity_error(db: Database, store: RecordingStore) -> None:
    with db.session() as s:
        rec = store.file_bytes(s, _wav(0.2), kind=RecordingKind.ANSWER_CLIP, attempt_id=None,
                               department_id=None)
    rec.path.unlink()
    with db.session() as s, pytest.raises(RecordingIntegrityError, match="missing"):
        store.read(s, rec.id, actor="sup")


def test_encrypted_at_rest(db: Database, tmp_path: Path, clock: FakeClock) -> None:
    key = RecordingCipher.new_key()
    audit = AuditLog(clock, TEST_AUDIT_KEY)
    enc = RecordingStore(tmp_path / "enc", clock, audit, RecordingCipher(key))
    audio = _wav(0.3)
    with db.session() as s:
        rec = enc.file_bytes(s, audio, kind=RecordingKind.CALL, attempt_id=None,
                             department_id=None)
    on_disk = rec.path.read_bytes()
    assert rec.path.suffix == ".enc" and b"RIFF" not in on_disk and b"WAVE" not in on_disk
    with db.session() as s:
        assert enc.read(s, rec.id, actor="a") == audio
    other = RecordingStore(tmp_path / "enc", clock, AuditLog(clock, TEST_AUDIT_KEY),
                           RecordingCipher(RecordingCipher.new_key()))
    with db.session() as s, pytest.raises(RecordingIntegrityError, match="decrypt"):
        other.read(s, rec.id, actor="a")


def test_same_audio_is_stored_once(db: Database, store: RecordingStore) -> None:
    audio = _wav(0.2)
    with db.session() as s:
        a = store.file_bytes(s, audio, kind=RecordingKind.CALL, attempt_id=None,
                             department_id=None)
        b = store.file_bytes(s, audio, kind=RecordingKind.CALL, attempt_id=None,
                             department_id=None)
    assert a.id != b.id and a.path == b.path
    assert len(list(store.root.rglob("*.wav"))) == 1


def test_retention_by_department_with_legal_hold(db: Database, store: RecordingStore,
                                                 clock: FakeClock) -> None:
    with db.session() as s:
        short = Department(code="ER", name="急诊科", retention_days=30)
        default = Department(code="CARD", name="心内科")
        s.add_all([short, default])
        s.flush()
        old_er = store.file_bytes(s, _wav(0.1, 300), kind=RecordingKind.CALL,
                                  attempt_id=None, department_id=short.id)
        held = store.file_bytes(s, _wav(0.1, 350), kind=RecordingKind.CALL,
                                attempt_id=None, department_id=short.id)
        s.get(Recording, held.id).legal_hold = True  # type: ignore[union-attr]
        card = store.file_bytes(s, _wav(0.1, 400), kind=RecordingKind.CALL,
                                attempt_id=None, department_id=default.id)
    clock.advance(dt.timedelta(days=60))
    audit = AuditLog(clock, TEST_AUDIT_KEY)
    with db.session() as s:
        report = purge_expired(s, store.root, clock, audit, default_days=180)
    assert (report.purged, report.files_removed, report.held) == (1, 1, 1)
    assert not old_er.path.exists() and held.path.exists() and card.path.exists()
    with db.session() as s:
        with pytest.raises(NotFound):
            store.read(s, old_er.id, actor="sup")
        purges = s.execute(select(AuditEntry).where(AuditEntry.action == "recording.purge")
                           ).scalars().all()
        assert [p.object_id for p in purges] == [str(old_er.id)]
    clock.advance(dt.timedelta(days=200))
    with db.session() as s:
        report = purge_expired(s, store.root, clock, audit, default_days=180)
    assert report.purged == 1 and not card.path.exists() and held.path.exists()
