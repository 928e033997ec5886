"""`manage.py delete_expired_exports`: delete export files past EXPORT_RETENTION_HOURS, now.

Beat runs the same service hourly (celery_app, `jobs.delete_expired_exports`); this command is
for operators without beat, e.g. from cron.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from apps.jobs.retention import expired_export_outputs_delete


class Command(BaseCommand):
    help = "Delete the files of export jobs that finished more than EXPORT_RETENTION_HOURS ago."

    def handle(self, *args: Any, **options: Any) -> None:
        deleted = expired_export_outputs_delete()
        self.stdout.write(f"Deleted {deleted} expired export file(s).")
