"""Why an import stops: refused (the file or request is at fault; the message says why) or cancelled."""

from __future__ import annotations

from apps.core.errors import ApplicationError


class ImportRefused(ApplicationError):
    """The file or the request cannot be imported. Shown to the user as is: a 400, or a failed job's error."""

    code = "import_refused"


class UploadTooLarge(ApplicationError):
    status_code = 413
    code = "payload_too_large"


class ImportCancelled(Exception):
    """The user cancelled the job; the import rolls back and leaves nothing behind."""
