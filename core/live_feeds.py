"""Where each running dialer serves its live feed (`dialer.live_feed`), for the console.

A dialer announces its feed's URL when it starts and again every half minute; an entry not
renewed for `max_age` is taken as a dialer that died. The console reads the live entries and
follows each feed.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from core.store.models import LiveFeedEntry


def announce(session: Session, owner: str, url: str, now: dt.datetime) -> None:
    """Record (or renew) `owner`'s feed at `url`."""
    done = session.execute(update(LiveFeedEntry).where(LiveFeedEntry.owner == owner)
                           .values(url=url, heartbeat_at=now))
    if getattr(done, "rowcount", 0) == 0:
        session.add(LiveFeedEntry(owner=owner, url=url, started_at=now, heartbeat_at=now))


def withdraw(session: Session, owner: str) -> None:
    session.execute(delete(LiveFeedEntry).where(LiveFeedEntry.owner == owner))


def live_feeds(session: Session, now: dt.datetime,
               max_age: dt.timedelta = dt.timedelta(seconds=90)) -> dict[str, str]:
    """The feeds renewed within `max_age`: owner -> URL."""
    rows = session.execute(select(LiveFeedEntry.owner, LiveFeedEntry.url)
                           .where(LiveFeedEntry.heartbeat_at >= now - max_age)).all()
    return {owner: url for owner, url in rows}
