from __future__ import annotations

from pathlib import PurePosixPath

from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.errors import Gone, NotFound
from apps.jobs import selectors, services
from apps.jobs.api.serializers import JobSerializer
from apps.jobs.models import Job, JobStatus
from apps.jobs.retention import export_retention, output_expired
from apps.workspaces.api.base import UUID_PATTERN, ApiViewSet
from apps.workspaces.selectors import workspace_for


class JobViewSet(ApiViewSet):
    """Background jobs: yours, and all of a workspace's for its admins. Poll one for progress."""

    serializer_class = JobSerializer
    queryset = Job.objects.unscoped().none()  # for the OpenAPI schema only
    lookup_value_regex = UUID_PATTERN

    @extend_schema(parameters=[OpenApiParameter("workspace", str), OpenApiParameter("status", str)])
    def list(self, request: Request) -> Response:
        jobs = selectors.jobs_visible_to(self.actor).select_related("workspace")
        if request.query_params.get("workspace"):
            jobs = jobs.filter(workspace=workspace_for(self.actor, request.query_params["workspace"]))
        if request.query_params.get("status") in JobStatus.values:
            jobs = jobs.filter(status=request.query_params["status"])
        page = self.paginate_queryset(jobs.order_by("-created_at"))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(self.get_serializer(self.enter(selectors.job_for(self.actor, pk))).data)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        job = services.job_cancel(job=self.enter(selectors.job_for(self.actor, pk)))
        return Response(self.get_serializer(job).data)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiResponse(description="The job's output.")})
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str) -> FileResponse:
        """The job's output file (an export, a poster), behind the same access check as the job itself.

        MEDIA_ROOT is not served by the web server: every byte of a job's output goes through here.
        An export past its retention answers 410, even before the cleanup has deleted its file.
        """
        job = self.enter(selectors.job_for(self.actor, pk))
        if output_expired(job):
            hours = int(export_retention().total_seconds() // 3600)
            raise Gone(f"This export was kept for {hours} hours after it finished and has been deleted; export again.")
        if not job.output_file:
            raise NotFound()
        name = job.result.get("file_name") or PurePosixPath(job.output_file.name).name
        return FileResponse(job.output_file.open("rb"), as_attachment=True, filename=name)
