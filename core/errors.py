"""One error tree for the whole engine.

Every error we raise derives from `FollowupError` and carries a stable `code`. Adapters
translate library errors at the edge (`raise ... from exc`) and say, through
`TemporaryError`, which failures may be retried. A patient hanging up is an outcome, never
an exception that escapes a call.
"""

from __future__ import annotations


class FollowupError(Exception):
    """Base of every error the engine raises on purpose."""

    code = "followup_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TemporaryError(FollowupError):
    """A failure that may go away by itself: retry with backoff."""

    code = "temporary"


class ConfigError(FollowupError):
    """A setting is missing or invalid; the message names the key."""

    code = "config_invalid"

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"setting {key}: {problem}")
        self.key = key
        self.problem = problem


class FileValidationError(FollowupError):
    """A rule, script or mapping file is invalid: names the file, the line and the field."""

    code = "file_invalid"

    def __init__(self, path: str, line: int | None, field: str, problem: str) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {field}: {problem}")
        self.path = path
        self.line = line
        self.field = field
        self.problem = problem


class StoreError(FollowupError):
    """The database refused an operation."""

    code = "store_error"


class StoreUnavailable(StoreError, TemporaryError):
    """The database could not be reached or was locked; may be retried."""

    code = "store_unavailable"


class NotFound(FollowupError):
    """A looked-up object does not exist (or is outside the caller's scope)."""

    code = "not_found"


class InvalidRequest(FollowupError):
    """A request that cannot be carried out as given (a missing reason, an unknown
    target); nothing was changed."""

    code = "invalid_request"


class PermissionDenied(FollowupError):
    """The caller may not do this."""

    code = "permission_denied"


class SourceError(FollowupError):
    """An HIS source failed in a way a retry will not fix."""

    code = "source_error"


class SourceUnavailable(SourceError, TemporaryError):
    """An HIS source is temporarily unreachable."""

    code = "source_unavailable"


class TelephonyError(FollowupError):
    """The telephony backend failed (not a call outcome: busy or no answer are outcomes)."""

    code = "telephony_error"


class TelephonyUnavailable(TelephonyError, TemporaryError):
    """The telephony backend is disconnected or overloaded; may be retried."""

    code = "telephony_unavailable"
