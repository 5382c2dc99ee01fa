"""Failed logins slow the guesser down, never lock anyone else out.

Failures are counted per (username, address) and per address. After `allowed` failures of
a pair, further tries of that pair are refused for a while that doubles with each failure
(30 s, 1 min, 2 min ... up to 15 min); an address that fails ten times as often, across any
usernames, is slowed the same way. A success clears its pair. Someone elsewhere typing a
colleague's name and wrong passwords therefore slows only themselves: the colleague logs in
from their own address as usual. Unknown usernames are counted exactly like known ones, so
neither the answer nor the delay tells which usernames exist.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete
from sqlalchemy.orm import Session

from core.store.models import LoginThrottle

FIRST_WAIT = dt.timedelta(seconds=30)
LONGEST_WAIT = dt.timedelta(minutes=15)
ADDRESS_FACTOR = 10  # an address may fail this many times more often than one pair


def _keys(username: str, client: str) -> tuple[str, str]:
    return f"u:{username}|{client}"[:200], f"a:{client}"[:200]


def _wait(failures: int, allowed: int) -> dt.timedelta | None:
    over = failures - allowed
    if over < 0:
        return None
    wait: dt.timedelta = FIRST_WAIT * (2 ** min(over, 16))
    return min(wait, LONGEST_WAIT)


class LoginThrottleStore:
    """The throttle kept in the store (every console process sees the same counts)."""

    def __init__(self, allowed: int) -> None:
        self._allowed = max(1, allowed)

    def blocked_until(self, session: Session, username: str, client: str,
                      now: dt.datetime) -> dt.datetime | None:
        """Until when this try must be refused, or None when it may go ahead."""
        until = [row.blocked_until for key in _keys(username, client)
                 if (row := session.get(LoginThrottle, key)) is not None
                 and row.blocked_until is not None and row.blocked_until > now]
        return max(until) if until else None

    def failed(self, session: Session, username: str, client: str, now: dt.datetime) -> None:
        pair, address = _keys(username, client)
        for key, allowed in ((pair, self._allowed), (address, self._allowed * ADDRESS_FACTOR)):
            row = session.get(LoginThrottle, key, with_for_update=True)
            if row is None:
                row = LoginThrottle(key=key, failures=0, updated_at=now)
                session.add(row)
            elif now - row.updated_at > LONGEST_WAIT * 2:
                row.failures = 0  # a quiet spell forgives
            row.failures += 1
            row.updated_at = now
            wait = _wait(row.failures, allowed)
            row.blocked_until = now + wait if wait is not None else None

    def succeeded(self, session: Session, username: str, client: str) -> None:
        session.execute(delete(LoginThrottle).where(
            LoginThrottle.key == _keys(username, client)[0]))
