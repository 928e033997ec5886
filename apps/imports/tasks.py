"""Celery adapter for imports: take the job id, enter its workspace, call the service."""

from __future__ import annotations

from collections.abc import Callable

from celery import Task, shared_task

from apps.imports import export_services, services
from apps.imports.selectors import export_job, import_job
from apps.jobs.models import Job
from apps.jobs.services import job_fail
from apps.workspaces.tenancy import workspace_scope

# Below the broker's visibility timeout (2 h, config/settings/base.py), so Redis never redelivers a live task.
TIME_LIMIT_SECONDS = 60 * 60
SOFT_TIME_LIMIT_SECONDS = 55 * 60
MAX_RETRIES = 3
# Routed at the call below (Celery 5.7 deprecates the `queue` task attribute); prefetch 1 comes from settings.
QUEUE = "imports"
# Tile archives render tiles with PostGIS, as the tiling job does: they share its workers.
TILE_ARCHIVE_QUEUE = "tiling"
# Shared by imports and exports: late acks so a killed worker's job is redelivered.
_TASK_OPTIONS = {
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "max_retries": MAX_RETRIES,
    "time_limit": TIME_LIMIT_SECONDS,
    "soft_time_limit": SOFT_TIME_LIMIT_SECONDS,
}


def _run_with_retries(task: Task, job: Job, execute: Callable[[], None], give_up: Callable[[], None]) -> None:
    """Run `execute` in the job's workspace; retry transient database errors (10 s, 20 s, 40 s), then give up."""
    with workspace_scope(job.workspace_id):
        try:
            execute()
        except services.TRANSIENT_ERRORS as exc:
            if task.request.retries >= MAX_RETRIES:
                give_up()
                return
            raise task.retry(exc=exc, countdown=10 * 2**task.request.retries) from exc


@shared_task(name="imports.run", **_TASK_OPTIONS)
def import_run(self: Task, job_id: str) -> None:
    """Run one import job; retry transient database errors with backoff (10 s, 20 s, 40 s).

    Idempotent on the job id: a finished job is left alone, and the features commit in
    the same transaction that marks the job succeeded, so a redelivery after that commit
    does nothing and a redelivery before it starts from a clean slate.
    """
    job = import_job(job_id)
    if job is None:
        return
    _run_with_retries(
        self,
        job,
        lambda: services.import_execute(job=job, task_id=self.request.id or ""),
        lambda: services.import_abandon(job=job, error="The database was unavailable; the import gave up."),
    )


def import_enqueue(job_id: str) -> None:
    """Send the job to the imports queue. Callers run this on commit, so the worker sees the Job row."""
    import_run.apply_async(args=[job_id], queue=QUEUE)


@shared_task(name="exports.run", **_TASK_OPTIONS)
def export_run(self: Task, job_id: str) -> None:
    """Run one export job; retry transient database errors with backoff.

    Idempotent on the job id: a finished job is left alone, and an interrupted one writes
    its file again from scratch under the job's own name.
    """
    _export(self, job_id)


@shared_task(name="exports.tile_archive", **_TASK_OPTIONS)
def tile_archive_run(self: Task, job_id: str) -> None:
    """Run one MBTiles / PMTiles export job: the same service, and so the same guarantees, as `export_run`."""
    _export(self, job_id)


def _export(task: Task, job_id: str) -> None:
    job = export_job(job_id)
    if job is None:
        return
    _run_with_retries(
        task,
        job,
        lambda: export_services.export_execute(job=job, task_id=task.request.id or ""),
        lambda: job_fail(job=job, error="The database was unavailable; the export gave up."),
    )


def export_enqueue(job_id: str, *, tile_archive: bool = False) -> None:
    """Send the export to its queue: GDAL work to imports, tile archives to tiling. Callers run this on commit."""
    if tile_archive:
        tile_archive_run.apply_async(args=[job_id], queue=TILE_ARCHIVE_QUEUE)
    else:
        export_run.apply_async(args=[job_id], queue=QUEUE)
