"""How long an export's file is kept: `EXPORT_RETENTION_HOURS` after its job finished, then deleted.

A download past that time answers 410 (whether or not the cleanup has run yet), so what a user
sees does not depend on when the periodic cleanup last ran. Posters and other outputs are not
exports and are kept.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from apps.jobs.models import Job, JobKind, JobStatus

logger = logging.getLogger(__name__)
DEFAULT_RETENTION_HOURS = 24


def export_retention() -> timedelta:
    return timedelta(hours=int(getattr(settings, "EXPORT_RETENTION_HOURS", DEFAULT_RETENTION_HOURS)))


def output_expires_at(job: Job) -> datetime | None:
    """When the job's output stops being downloadable; None when it does not expire (or never had one)."""
    if job.kind != JobKind.EXPORT or job.status != JobStatus.SUCCEEDED or job.finished_at is None:
        return None
    return job.finished_at + export_retention()


def output_expired(job: Job, *, now: datetime | None = None) -> bool:
    expires_at = output_expires_at(job)
    return expires_at is not None and expires_at <= (now or timezone.now())


def expired_export_outputs(*, now: datetime) -> QuerySet[Job]:
    """Export jobs of every workspace whose file is past its retention and still stored.

    unscoped(): housekeeping across tenants, run by the worker, never on a request's behalf.
    Uses the finished_at condition only; exports are a small share of jobs.
    """
    return (
        Job.objects.unscoped()
        .filter(kind=JobKind.EXPORT, finished_at__lte=now - export_retention())
        .exclude(output_file="")
    )


def expired_export_outputs_delete(*, now: datetime | None = None) -> int:
    """Delete the files of expired exports and forget them on their jobs; return how many were deleted.

    The row is cleared only after its file is gone, and by a conditional update, so a run cut
    short (or two runs at once) just leaves work for the next one.
    """
    deleted = 0
    for job in expired_export_outputs(now=now or timezone.now()).only("pk", "output_file"):
        name = job.output_file.name
        job.output_file.storage.delete(name)
        Job.objects.unscoped().filter(pk=job.pk, output_file=name).update(output_file="")
        logger.info("deleted expired export %s of job %s", name, job.pk)
        deleted += 1
    return deleted
