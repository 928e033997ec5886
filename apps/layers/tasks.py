"""Celery adapter for dropping the partitions of deleted layers (apps/layers/storage.py)."""

from __future__ import annotations

from celery import shared_task

from apps.layers import storage


@shared_task(
    name="layers.unused_partitions_drop",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(Exception,),
    max_retries=8,  # a drop that keeps hitting its lock timeout: about an hour of tries
    retry_backoff=30,
    retry_backoff_max=20 * 60,
    time_limit=30 * 60,
    soft_time_limit=25 * 60,
)
def unused_partitions_drop_run() -> None:
    """Idempotent: drops only partitions no layer holds, and finishes a detach an earlier run left pending."""
    storage.unused_partitions_drop()
