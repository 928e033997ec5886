"""The Celery application: one instance, queues per workload (DESIGN §8)."""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("meridian")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name) for name in ("celery", "imports", "tiling", "analysis", "posters")]
app.autodiscover_tasks()
# Run by the one beat process (compose's `beat`; `make run`'s worker embeds it with -B).
app.conf.beat_schedule = {
    "delete-expired-exports": {
        "task": "jobs.delete_expired_exports",
        "schedule": crontab(minute=17),  # hourly; off the hour, when other schedules pile up
        "options": {"queue": "celery", "expires": 30 * 60},
    },
}

__all__ = ["app"]
