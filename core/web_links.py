"""One-time links to the patient's web questionnaire: issued here, checked by `patient_web`.

A token is 16 random bytes and the first 10 bytes of their HMAC-SHA256 under the patient
web's secret key, URL-safe base64 (35 characters): it carries nothing about the patient or
the task, a forged one is refused before the store is asked, and the store keeps only the
token's SHA-256, so a copy of the database opens no questionnaire. The URL is the patient
web's public address, `/q/`, and the token: no patient data in the URL.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets

from sqlalchemy.orm import Session

from core.store.models import WebLink

_IN_TEXT = re.compile(r"/q/[A-Za-z0-9_-]{35}")
_RANDOM = 16
_MAC = 10
TOKEN_LENGTH = 35  # base64 of 26 bytes, unpadded


def _mac(key: bytes, random: bytes) -> bytes:
    return hmac.new(key, random, hashlib.sha256).digest()[:_MAC]


def token_hash(token: str) -> str:
    """What the store keeps of a token."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def signed(token: str, key: bytes) -> bool:
    """Whether `token` is one we made under `key` (constant time; says nothing of whether
    it is still good: the store says that)."""
    if len(token) != TOKEN_LENGTH:
        return False
    try:
        raw = base64.urlsafe_b64decode(token + "=")
    except (ValueError, UnicodeEncodeError):
        return False
    if len(raw) != _RANDOM + _MAC:
        return False
    return hmac.compare_digest(raw[_RANDOM:], _mac(key, raw[:_RANDOM]))


def new_token(key: bytes) -> str:
    random = secrets.token_bytes(_RANDOM)
    return base64.urlsafe_b64encode(random + _mac(key, random)).decode("ascii").rstrip("=")


def issue(session: Session, *, key: bytes, patient_id: int, task_id: int, now: dt.datetime,
          valid_for: dt.timedelta) -> tuple[WebLink, str]:
    """A new link for `task_id`, valid for `valid_for`; returns the row and the token (the
    only time the token exists in the clear: it goes into the message)."""
    token = new_token(key)
    link = WebLink(token_hash=token_hash(token), patient_id=patient_id, task_id=task_id,
                   failures=0, created_at=now, expires_at=now + valid_for)
    session.add(link)
    session.flush()
    return link, token


def url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/q/{token}"


def masked(text: str) -> str:
    """`text` with every link's token hidden, for showing a sent message to staff (the
    token opens the patient's questionnaire; nobody needs to read it back)."""
    return _IN_TEXT.sub("/q/…", text)
