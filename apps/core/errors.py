"""Domain errors raised by services and selectors; the API maps them to HTTP."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """A request the domain refuses. `field` names the input at fault, if any."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra or {}


class NotFound(ApplicationError):
    """Missing *or* forbidden: callers never learn which (ids cannot be probed)."""

    status_code = 404
    code = "not_found"

    def __init__(self, message: str = "Not found.") -> None:
        super().__init__(message)


class PermissionDenied(ApplicationError):
    """The actor can see the object but may not do this to it."""

    status_code = 403
    code = "permission_denied"


class Gone(ApplicationError):
    """The object existed and the caller may see it, but what they ask for has been removed for good."""

    status_code = 410
    code = "gone"


class Conflict(ApplicationError):
    status_code = 409
    code = "conflict"


class StaleVersion(ApplicationError):
    """Optimistic concurrency: the caller's version is not the current one."""

    status_code = 412
    code = "stale_version"


class PreconditionRequired(ApplicationError):
    status_code = 428
    code = "precondition_required"
