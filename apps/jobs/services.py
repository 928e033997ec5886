"""Writes for jobs. Workers report through these; users cancel through them."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.core.errors import Conflict
from apps.jobs.live import job_progress_push
from apps.jobs.models import FINISHED_STATUSES, Job, JobStatus


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
    job_progress_push(job=job, status=job.status, progress=job.progress, phase=job.phase)
    if job.celery_task_id:
        task_id = job.celery_task_id
        transaction.on_commit(lambda: _revoke(task_id))
    return job


def _revoke(task_id: str) -> None:
    from celery_app import app

    # terminate=False: the task checks cancel_requested and rolls back cleanly.
    app.control.revoke(task_id)


# --- reporting from workers ---------------------------------------------------------------


@transaction.atomic
def job_start(*, job: Job, task_id: str = "") -> Job | None:
    """Claim a job for a worker run: running, one more attempt. None when it is already finished.

    A redelivered task (the worker died) finds its job still running and claims it again;
    a task whose job finished, or was cancelled before it started, does nothing.
    """
    job = Job.objects.for_workspace(job.workspace_id).select_for_update().get(pk=job.pk)
    if job.is_finished:
        return None
    job.status = JobStatus.RUNNING
    job.attempts += 1
    job.started_at = job.started_at or timezone.now()
    job.celery_task_id = task_id or job.celery_task_id
    job.save(update_fields=["status", "attempts", "started_at", "celery_task_id", "updated_at"])
    job_progress_push(job=job, status=job.status, progress=job.progress, phase=job.phase)
    return job


def job_report(*, job: Job, phase: str, progress: int) -> bool:
    """Write a running job's phase and percent; return True when the user asked to cancel it.

    Only touches a running job, so a late report cannot overwrite a finished one.
    Pushed to its sockets at most every `live.PUSH_INTERVAL_SECONDS`.
    """
    jobs = Job.objects.for_workspace(job.workspace_id).filter(pk=job.pk)
    phase, progress = phase[:200], max(0, min(progress, 100))
    if jobs.filter(status=JobStatus.RUNNING).update(phase=phase, progress=progress, updated_at=timezone.now()):
        job_progress_push(job=job, status=JobStatus.RUNNING, progress=progress, phase=phase, throttled=True)
    return bool(jobs.filter(cancel_requested=True).exists())


def job_succeed(*, job: Job, result: dict[str, Any], layer_id: object = None) -> bool:
    """Mark the job succeeded inside the caller's transaction (the one holding its work): all or nothing.

    Returns False, changing nothing, when the job was cancelled meanwhile; the caller then rolls back.
    """
    locked = Job.objects.for_workspace(job.workspace_id).select_for_update().get(pk=job.pk)
    if locked.cancel_requested or locked.is_finished:
        return False
    locked.status = JobStatus.SUCCEEDED
    locked.progress = 100
    locked.phase = "done"
    locked.result = result
    locked.error = ""
    locked.finished_at = timezone.now()
    fields = ["status", "progress", "phase", "result", "error", "finished_at", "updated_at"]
    if layer_id is not None:
        locked.layer_id = layer_id
        fields.append("layer")
    locked.save(update_fields=fields)
    # On the caller's commit: a rolled-back import is never announced as done.
    job_progress_push(job=locked, status=locked.status, progress=100, phase=locked.phase, layer_id=locked.layer_id)
    return True


def job_fail(*, job: Job, error: str, result: dict[str, Any] | None = None) -> None:
    """Mark an unfinished job failed with a message the user can act on."""
    now = timezone.now()
    updates: dict[str, Any] = {
        "status": JobStatus.FAILED,
        "error": error,
        "phase": "failed",
        "finished_at": now,
        "updated_at": now,
    }
    if result is not None:
        updates["result"] = result
    unfinished = Job.objects.for_workspace(job.workspace_id).filter(pk=job.pk).exclude(status__in=FINISHED_STATUSES)
    progress = unfinished.values_list("progress", flat=True).first()
    if progress is not None and unfinished.update(**updates):
        job_progress_push(job=job, status=JobStatus.FAILED, progress=progress, phase="failed", error=error)
