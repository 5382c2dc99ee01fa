"""Errors -> HTTP, in one table."""

from __future__ import annotations

from core.errors import (
    FollowupError,
    NotFound,
    PermissionDenied,
    StoreUnavailable,
    TelephonyError,
)


class CsrfFailed(FollowupError):
    """A POST without the session's CSRF token."""

    code = "csrf"


class LoginRequired(FollowupError):
    """No session: the view redirects to the login page."""

    code = "login_required"


def _integrity_error() -> type[FollowupError]:
    from recordings.store import RecordingIntegrityError

    return RecordingIntegrityError


def _form_error() -> type[FollowupError]:
    from console.forms import FormError

    return FormError


# Most specific first: the first matching class decides the status.
STATUS_BY_ERROR: tuple[tuple[type[FollowupError], int], ...] = (
    (NotFound, 404),
    (PermissionDenied, 403),
    (CsrfFailed, 403),
    (_form_error(), 400),
    (_integrity_error(), 409),
    (StoreUnavailable, 503),
    (TelephonyError, 502),
)


def status_for(exc: FollowupError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return 500
