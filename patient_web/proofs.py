"""Proofs tied to one link, made with the links' secret key: the CSRF field of its forms
and the cookie that says this browser passed its identity check. Nothing is kept
server-side (they survive restarts), and neither says anything about the patient."""

from __future__ import annotations

import hashlib
import hmac

from core.web_links import token_hash

CSRF = "csrf"
VERIFIED = "verified"


def proof(key: bytes, token: str, purpose: str) -> str:
    message = f"{purpose}|{token_hash(token)}".encode("ascii")
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:40]


def holds(key: bytes, token: str, purpose: str, sent: object) -> bool:
    """True when `sent` is the `purpose` proof of `token` (constant time)."""
    return isinstance(sent, str) and hmac.compare_digest(sent, proof(key, token, purpose))
