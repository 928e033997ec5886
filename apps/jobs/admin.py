from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.core.errors import Conflict
from apps.jobs.models import Job, JobStatus
from apps.jobs.services import job_cancel
from apps.workspaces.admin_base import WorkspaceListFilter, WorkspaceOwnedAdmin, json_block

# Written by the worker as the job runs; people read them.
PROGRESS_FIELDS = (
    "status",
    "progress",
    "phase",
    "result_json",
    "error",
    "attempts",
    "celery_task_id",
    "cancel_requested",
    "started_at",
    "finished_at",
)
# What the job was asked to do: chosen when it is created, fixed after.
REQUEST_FIELDS = ("kind", "params", "map", "layer", "output_file")


@admin.register(Job)
class JobAdmin(WorkspaceOwnedAdmin):
    choose_workspace_on_add = True
    list_display = ("id", "kind", "status", "progress_percent", "phase", "workspace", "created_by", "created_at")
    list_select_related = ("workspace", "created_by")
    list_filter = ("status", "kind", ("workspace", WorkspaceListFilter), "created_at", "finished_at")
    search_fields = ("=id", "=celery_task_id", "workspace__name", "workspace__slug", "created_by__email", "error")
    search_help_text = "An exact job or Celery task id, workspace, creator's email, or text of the error."
    autocomplete_fields = ("map", "layer")
    fieldsets = (
        (None, {"fields": REQUEST_FIELDS}),
        ("Progress", {"fields": PROGRESS_FIELDS}),
    )
    actions = ("cancel",)

    def get_fieldsets(self, request: HttpRequest, obj: Job | None = None) -> list[tuple[Any, dict[str, Any]]]:
        (title, options), *rest = super().get_fieldsets(request, obj)
        if obj is None:  # nothing has run yet
            return [(title, options)]
        fields = ["params_json" if name == "params" else name for name in options["fields"]]
        return [(title, {**options, "fields": fields}), *rest]

    def get_readonly_fields(self, request: HttpRequest, obj: Job | None = None) -> list[str]:
        fields = [*super().get_readonly_fields(request, obj), *PROGRESS_FIELDS]
        return [*fields, "params_json", *REQUEST_FIELDS] if obj is not None else fields

    @admin.display(description="progress", ordering="progress")
    def progress_percent(self, job: Job) -> str:
        return f"{job.progress}%"

    @admin.display(description="result")
    def result_json(self, job: Job) -> str:
        return json_block(job.result)

    @admin.display(description="params")
    def params_json(self, job: Job) -> str:
        return json_block(job.params)

    @admin.action(description="Cancel selected queued or running jobs")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        jobs = list(queryset.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]))
        cancelled = 0
        for job in jobs:
            try:
                job_cancel(job=job)
            except Conflict:  # it finished since the list was drawn
                continue
            cancelled += 1
        skipped = queryset.count() - cancelled
        self.message_user(request, f"Cancelled {cancelled} job(s).")
        if skipped:
            self.message_user(request, f"{skipped} job(s) had already finished.", messages.WARNING)
