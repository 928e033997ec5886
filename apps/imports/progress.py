"""A running import's phase and percent, written to its Job at least every second, and its cancellation.

A background thread writes, with its own database connection, so progress keeps
moving while the main thread sits in one long statement (the INSERT … SELECT of a
million rows). The same write reads `cancel_requested`, which the main thread
checks between phases.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from django.db import connection

from apps.imports.errors import ImportCancelled
from apps.jobs.models import Job
from apps.jobs.services import job_report
from apps.workspaces.tenancy import workspace_scope

logger = logging.getLogger(__name__)
INTERVAL_SECONDS = 1.0


class ProgressReporter:
    def __init__(self, job: Job, *, interval: float = INTERVAL_SECONDS) -> None:
        self.job = job
        self.interval = interval
        self.phase = "starting"
        self.progress = 0
        self.cancel_requested = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"import-progress-{job.pk}", daemon=True)

    def __enter__(self) -> ProgressReporter:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def set(self, phase: str, progress: int) -> None:
        """Record the phase; written now when outside a transaction, else by the thread within a second."""
        self.phase, self.progress = phase, progress
        if not connection.in_atomic_block:
            self._write()

    def note(self, phase: str, progress: int) -> None:
        """Record the phase for the thread's next write: for a tight loop that must not write on every step."""
        self.phase, self.progress = phase, progress

    def check_cancelled(self) -> None:
        if self.cancel_requested:
            raise ImportCancelled()

    def _write(self) -> None:
        with workspace_scope(self.job.workspace_id):
            if job_report(job=self.job, phase=self.phase, progress=self.progress):
                self.cancel_requested = True

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    self._write()
                except Exception:  # progress is best effort; the import itself must not fail on it
                    logger.exception("could not report progress of import %s", self.job.pk)
        finally:
            connection.close()  # this thread's own connection
