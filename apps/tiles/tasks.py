"""Celery adapter for the tiling job."""

from __future__ import annotations

from celery import Task, shared_task

from apps.jobs.models import Job
from apps.tiles import services
from apps.workspaces.tenancy import workspace_scope


@shared_task(
    bind=True,
    name="tiles.layer_tiling",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=2,
    time_limit=30 * 60,
    soft_time_limit=25 * 60,
)
def layer_tiling_run(self: Task, job_id: str) -> None:
    """Idempotent: the build replaces the layer's aggregates in one transaction, so a rerun is harmless."""
    job = Job.objects.unscoped().filter(pk=job_id).first()
    if job is None:
        return
    with workspace_scope(job.workspace_id):
        services.layer_tiling_execute(job=job)
