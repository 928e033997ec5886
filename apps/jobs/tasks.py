"""Celery adapters for job housekeeping."""

from __future__ import annotations

from celery import shared_task

from apps.jobs.retention import expired_export_outputs_delete


@shared_task(name="jobs.delete_expired_exports", acks_late=True, time_limit=10 * 60, soft_time_limit=9 * 60)
def delete_expired_exports() -> int:
    """Idempotent: it deletes only what is already expired, and a file already gone is skipped."""
    return expired_export_outputs_delete()
