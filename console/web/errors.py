"""Errors -> HTTP, in one table."""

from __future__ import annotations

from console.forms import FormError
from core.errors import (
    FollowupError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    StoreUnavailable,
    TelephonyError,
)
from recordings.store import RecordingIntegrityError


class CsrfFailed(FollowupError):
    """A POST without the session's CSRF token."""

    code = "csrf"


class LoginRequired(FollowupError):
    """No session: the view redirects to the login page."""

    code = "login_required"


# Most specific first: the first matching class decides the status.
STATUS_BY_ERROR: tuple[tuple[type[FollowupError], int], ...] = (
    (NotFound, 404),
    (PermissionDenied, 403),
    (CsrfFailed, 403),
    (FormError, 400),
    (InvalidRequest, 400),
    (RecordingIntegrityError, 409),
    (StoreUnavailable, 503),
    (TelephonyError, 502),
)


def status_for(exc: FollowupError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return 500
