"""The append-only audit log: an HMAC chain with its key and its newest links kept outside
the database.

Each entry's hash is HMAC-SHA256, under a key that is not in the database (a settings
secret or a key file), over the previous hash and the entry's canonical content: a changed
or deleted row breaks the chain, and someone who can write the database but has not the key
cannot compute a new one. Appends lock the single `audit_head` row, which serialises writers
on every backend. Once a transaction holding entries commits, their ids and hashes are
appended to an anchor file outside the store (beside the recordings), so deleting the
newest entries together with the head row, or replacing the whole chain, is seen too.
`verify_chain` names the first entry that does not hold.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from core.clock import Clock, ensure_utc
from core.store.models import AuditEntry, AuditHead

log = logging.getLogger(__name__)

GENESIS = "0" * 64
_PENDING = "audit_anchor_pending"


def _entry_hash(key: bytes, prev_hash: str, at: dt.datetime, actor: str, action: str,
                object_type: str, object_id: str, detail: dict[str, Any]) -> str:
    body = json.dumps(
        [prev_hash, ensure_utc(at).isoformat(timespec="microseconds"), actor, action,
         object_type, object_id, detail],
        ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str,
    )
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def load_or_create_key(path: Path) -> bytes:
    """The chain's key from a key file, made (32 random bytes, readable by the owner only)
    when there is none yet."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(os.urandom(32).hex() + "\n")
    return bytes.fromhex(path.read_text(encoding="ascii").strip())


class AuditLog:
    """Writes audit events inside the caller's transaction. `anchor`: the file the
    committed entries' links are appended to (None: no anchor, e.g. a throw-away store)."""

    def __init__(self, clock: Clock, key: bytes, anchor: Path | None = None) -> None:
        if len(key) < 16:
            raise ValueError("the audit key must have at least 16 bytes")
        self._clock = clock
        self._key = key
        self._anchor = anchor

    def append(self, session: Session, actor: str, action: str, object_type: str,
               object_id: str | int, detail: dict[str, Any] | None = None) -> AuditEntry:
        detail = dict(detail or {})
        head = session.execute(
            select(AuditHead).where(AuditHead.id == 1).with_for_update()
        ).scalar_one_or_none()
        if head is None:
            head = AuditHead(id=1, last_id=0, last_hash=GENESIS)
            session.add(head)
            session.flush()
        at = self._clock.now()
        digest = _entry_hash(self._key, head.last_hash, at, actor, action, object_type,
                             str(object_id), detail)
        entry = AuditEntry(at=at, actor=actor, action=action, object_type=object_type,
                           object_id=str(object_id), detail=detail, prev_hash=head.last_hash,
                           hash=digest)
        session.add(entry)
        session.flush()
        session.execute(update(AuditHead).where(AuditHead.id == 1)
                        .values(last_id=entry.id, last_hash=digest))
        if self._anchor is not None:
            self._anchor_after_commit(session, entry.id, digest)
        return entry

    def _anchor_after_commit(self, session: Session, entry_id: int, digest: str) -> None:
        pending: list[tuple[int, str]] | None = session.info.get(_PENDING)
        if pending is None:
            pending = session.info[_PENDING] = []
            anchor = self._anchor
            assert anchor is not None

            def committed(s: Session) -> None:
                lines = "".join(f"{i} {h}\n" for i, h in s.info.pop(_PENDING, []))
                try:
                    with anchor.open("a", encoding="ascii") as out:
                        out.write(lines)
                except OSError as exc:  # the entries are stored; the anchor lags behind
                    log.error("audit anchor %s not written: %s", anchor, exc)

            def rolled_back(s: Session) -> None:
                s.info.pop(_PENDING, None)

            event.listen(session, "after_commit", committed, once=True)
            event.listen(session, "after_rollback", rolled_back, once=True)
        pending.append((entry_id, digest))


@dataclass(frozen=True)
class ChainReport:
    entries: int
    ok: bool
    broken_at: int | None = None
    problem: str = ""


def verify_chain(session: Session, key: bytes, anchor: Path | None = None) -> ChainReport:
    """Walk the whole chain; report the first row whose hash or link does not hold, then
    hold the newest entry and the anchor file (when given) against each other."""
    prev = GENESIS
    count = 0
    last_id = 0
    hashes: dict[int, str] = {}
    rows = session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()
    for row in rows:
        count += 1
        if row.prev_hash != prev:
            return ChainReport(count, False, row.id,
                               "link broken: a row before it was changed or deleted")
        expected = _entry_hash(key, prev, row.at, row.actor, row.action, row.object_type,
                               row.object_id, dict(row.detail))
        if not hmac.compare_digest(expected, row.hash):
            return ChainReport(count, False, row.id,
                               "content changed, or written without the audit key")
        prev = row.hash
        last_id = row.id
        hashes[row.id] = row.hash
    head = session.get(AuditHead, 1)
    if head is not None and (head.last_hash != prev or head.last_id != last_id):
        return ChainReport(count, False, head.last_id,
                           "the newest entries were deleted (head does not match)")
    if anchor is None:
        return ChainReport(count, True)
    return _against_anchor(anchor, hashes, count)


def _against_anchor(anchor: Path, hashes: dict[int, str], count: int) -> ChainReport:
    if not anchor.exists():
        if hashes:
            return ChainReport(count, False, None,
                               f"the anchor file {anchor} is missing: the chain cannot be "
                               "checked against it")
        return ChainReport(count, True)
    for number, line in enumerate(anchor.read_text(encoding="ascii").splitlines(), 1):
        entry_id, _, digest = line.partition(" ")
        if not entry_id.isdigit():
            return ChainReport(count, False, None, f"{anchor} line {number} is garbled")
        stored = hashes.get(int(entry_id))
        if stored is None:
            return ChainReport(count, False, int(entry_id),
                               "an entry the anchor file holds is not in the store "
                               "(the newest entries were deleted, or the chain replaced)")
        if not hmac.compare_digest(stored, digest):
            return ChainReport(count, False, int(entry_id),
                               "the entry differs from its anchored hash (the chain was "
                               "replaced)")
    return ChainReport(count, True)
