"""Celery adapter for imports: take the job id, enter its workspace, call the service."""

from __future__ import annotations

from celery import Task, shared_task

from apps.imports import export_services, services
from apps.imports.selectors import export_job, import_job
from apps.workspaces.tenancy import workspace_scope

# Below the broker's visibility timeout (2 h, config/settings/base.py), so Redis never redelivers a live task.
TIME_LIMIT_SECONDS = 60 * 60
SOFT_TIME_LIMIT_SECONDS = 55 * 60
MAX_RETRIES = 3
# Routed at the call below (Celery 5.7 deprecates the `queue` task attribute); prefetch 1 comes from settings.
QUEUE = "imports"


@shared_task(
    bind=True,
    name="imports.run",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
    time_limit=TIME_LIMIT_SECONDS,
    soft_time_limit=SOFT_TIME_LIMIT_SECONDS,
)
def import_run(self: Task, job_id: str) -> None:
    """Run one import job; retry transient database errors with backoff (10 s, 20 s, 40 s).

    Idempotent on the job id: a finished job is left alone, and the features commit in
    the same transaction that marks the job succeeded, so a redelivery after that commit
    does nothing and a redelivery before it starts from a clean slate.
    """
    job = import_job(job_id)
    if job is None:
        return
    with workspace_scope(job.workspace_id):
        try:
            services.import_execute(job=job, task_id=self.request.id or "")
        except services.TRANSIENT_ERRORS as exc:
            if self.request.retries >= MAX_RETRIES:
                services.import_abandon(job=job, error="The database was unavailable; the import gave up.")
                return
            raise self.retry(exc=exc, countdown=10 * 2**self.request.retries) from exc


def import_enqueue(job_id: str) -> None:
    """Send the job to the imports queue. Callers run this on commit, so the worker sees the Job row."""
    import_run.apply_async(args=[job_id], queue=QUEUE)


@shared_task(
    bind=True,
    name="exports.run",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
    time_limit=TIME_LIMIT_SECONDS,
    soft_time_limit=SOFT_TIME_LIMIT_SECONDS,
)
def export_run(self: Task, job_id: str) -> None:
    """Run one export job; retry transient database errors with backoff.

    Idempotent on the job id: a finished job is left alone, and an interrupted one writes
    its file again from scratch under the job's own name.
    """
    job = export_job(job_id)
    if job is None:
        return
    with workspace_scope(job.workspace_id):
        try:
            export_services.export_execute(job=job, task_id=self.request.id or "")
        except services.TRANSIENT_ERRORS as exc:
            if self.request.retries >= MAX_RETRIES:
                from apps.jobs.services import job_fail

                job_fail(job=job, error="The database was unavailable; the export gave up.")
                return
            raise self.retry(exc=exc, countdown=10 * 2**self.request.retries) from exc


def export_enqueue(job_id: str) -> None:
    """Send the export to the imports queue (GDAL work, like imports). Callers run this on commit."""
    export_run.apply_async(args=[job_id], queue=QUEUE)
