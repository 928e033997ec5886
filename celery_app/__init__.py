"""The Celery application: one instance, queues per workload (DESIGN §8)."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("meridian")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name) for name in ("celery", "imports", "tiling", "analysis", "posters")]
app.autodiscover_tasks()

__all__ = ["app"]
