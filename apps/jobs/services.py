"""Writes for jobs. Workers report through these; users cancel through them."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from apps.core.errors import Conflict
from apps.jobs.models import Job, JobStatus


@transaction.atomic
def job_cancel(*, job: Job) -> Job:
    """Cancel a queued or running job. A running task sees `cancel_requested` and rolls back its work."""
    job = Job.objects.for_workspace(job.workspace_id).select_for_update().get(pk=job.pk)
    if job.is_finished:
        raise Conflict(f"The job has already {job.status}.")
    job.cancel_requested = True
    job.status = JobStatus.CANCELLED
    job.finished_at = timezone.now()
    job.phase = "cancelled"
    job.save(update_fields=["cancel_requested", "status", "finished_at", "phase", "updated_at"])
    if job.celery_task_id:
        task_id = job.celery_task_id
        transaction.on_commit(lambda: _revoke(task_id))
    return job


def _revoke(task_id: str) -> None:
    from celery_app import app

    # terminate=False: the task checks cancel_requested and rolls back cleanly.
    app.control.revoke(task_id)
