"""Is this link good? The token's signature first, then the store.

A token that is not one of ours (`core.web_links.signed`) never reaches the database. A
signed one is looked up by its hash: unknown, locked (three wrong birth years), used (the
questionnaire was finished), expired, or its task closed some other way (answered by phone,
stopped, cancelled) are refused, each with its own page; only an open link goes on.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.enums import TaskStatus
from core.store.models import FollowupTask, Patient, WebLink
from core.web_links import signed, token_hash


class LinkState(enum.StrEnum):
    OPEN = "open"
    UNKNOWN = "unknown"  # forged, mistyped, or never issued
    LOCKED = "locked"
    USED = "used"
    EXPIRED = "expired"
    CLOSED = "closed"  # its follow-up ended another way


# tasks a web questionnaire may still answer: waiting, being called, or given up by phone
# (after the last failed call the link is the way left)
ANSWERABLE = frozenset({TaskStatus.PENDING, TaskStatus.CLAIMED, TaskStatus.FAILED})


@dataclass(frozen=True)
class FoundLink:
    """A link with its task and patient, read together (one query)."""

    link: WebLink
    task: FollowupTask
    patient: Patient


def find_link(s: Session, token: str, key: bytes, *, for_update: bool = False
              ) -> FoundLink | None:
    """The link of `token` with its task and patient, or None for a token we did not sign
    or never issued. `for_update`: lock the link and task rows (failures, verification,
    answers and use are written under them)."""
    if not signed(token, key):
        return None
    q = (select(WebLink, FollowupTask, Patient)
         .join(FollowupTask, FollowupTask.id == WebLink.task_id)
         .join(Patient, Patient.id == WebLink.patient_id)
         .where(WebLink.token_hash == token_hash(token)))
    if for_update:
        q = q.with_for_update(of=[WebLink, FollowupTask])
    row = s.execute(q).first()
    return None if row is None else FoundLink(*row)


def link_state(found: FoundLink | None, now: dt.datetime) -> LinkState:
    """What the patient may do with the link now."""
    if found is None:
        return LinkState.UNKNOWN
    link = found.link
    if link.locked_at is not None:
        return LinkState.LOCKED
    if link.used_at is not None:
        return LinkState.USED
    if now >= link.expires_at:
        return LinkState.EXPIRED
    if found.task.status not in ANSWERABLE:
        return LinkState.CLOSED
    return LinkState.OPEN
