"""Console login sessions kept in the store: the cookie holds a random token, the table its
sha256, so ending a session (logout, deactivation, lockout) takes effect at once."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.store.models import ConsoleSession


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(session: Session, user_id: int, client: str, now: dt.datetime,
                 lifetime: dt.timedelta) -> str:
    """A new session for `user_id`; returns the token for the cookie (never stored)."""
    token = secrets.token_urlsafe(32)
    session.add(ConsoleSession(token_hash=_digest(token), user_id=user_id, client=client[:64],
                               created_at=now, expires_at=now + lifetime))
    session.flush()
    return token


def session_user(session: Session, token: str, now: dt.datetime) -> int | None:
    """The user of a live session, or None (unknown, expired or revoked token)."""
    if not token or len(token) > 128:
        return None
    row = session.execute(select(ConsoleSession.user_id).where(
        ConsoleSession.token_hash == _digest(token), ConsoleSession.revoked_at.is_(None),
        ConsoleSession.expires_at > now)).first()
    return None if row is None else int(row[0])


def revoke(session: Session, token: str, now: dt.datetime) -> None:
    session.execute(update(ConsoleSession).where(ConsoleSession.token_hash == _digest(token),
                                                 ConsoleSession.revoked_at.is_(None))
                    .values(revoked_at=now))


def revoke_user(session: Session, user_id: int, now: dt.datetime) -> int:
    """End every live session of a user; returns how many."""
    done = session.execute(update(ConsoleSession).where(ConsoleSession.user_id == user_id,
                                                        ConsoleSession.revoked_at.is_(None))
                           .values(revoked_at=now))
    return int(getattr(done, "rowcount", 0) or 0)
