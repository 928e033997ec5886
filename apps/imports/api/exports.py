"""GET /api/v1/layers/<id>/export/?format=…: the file now, or 202 with a Job for a large layer or a tile archive."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response

from apps.imports.export_services import export_job_create, export_now
from apps.imports.exports import (
    DEFAULT_MAX_ZOOM,
    DEFAULT_MIN_ZOOM,
    MAX_EXPORT_ZOOM,
    ExportFormat,
    export_count,
    export_query,
    export_sync_max_features,
)
from apps.jobs.api.serializers import JobSerializer
from apps.layers.selectors import layer_access
from apps.maps.permissions import LayerAction
from apps.workspaces.api.base import ApiViewSet


class FormatIsAParameter(DefaultContentNegotiation):
    """`?format=` names the export's file format here, not a DRF renderer; errors render as JSON."""

    def select_renderer(self, request: Request, renderers: list[Any], format_suffix: str | None = None) -> Any:
        return renderers[0], renderers[0].media_type


class LayerExportViewSet(ApiViewSet):
    """Export a layer the caller may view, with the shared attribute filters and a bbox."""

    serializer_class = JobSerializer
    content_negotiation_class = FormatIsAParameter

    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=[f.value for f in ExportFormat], description="default geojson"),
            OpenApiParameter("bbox", str, description="west,south,east,north (degrees)"),
            OpenApiParameter("minzoom", int, description=f"mbtiles / pmtiles only; default {DEFAULT_MIN_ZOOM}"),
            OpenApiParameter(
                "maxzoom",
                int,
                description=f"mbtiles / pmtiles only; default {DEFAULT_MAX_ZOOM}, at most {MAX_EXPORT_ZOOM}",
            ),
        ],
        responses={
            (200, "application/octet-stream"): OpenApiResponse(description="The file."),
            202: JobSerializer,
        },
    )
    def retrieve(self, request: Request, layer_id: UUID) -> Response | FileResponse:
        layer = self.enter(layer_access(self.actor, layer_id, action=LayerAction.VIEW).layer)
        query = export_query(layer, request.query_params)
        if query.is_tile_archive or export_count(layer, query) > export_sync_max_features():
            job = export_job_create(user=request.user, layer=layer, query=query)
            location = reverse("job-detail", kwargs={"pk": job.pk})  # where to poll
            return Response(
                self.get_serializer(job).data, status=status.HTTP_202_ACCEPTED, headers={"Location": location}
            )
        exported = export_now(layer=layer, query=query)
        return FileResponse(
            exported.file, as_attachment=True, filename=exported.name, content_type=exported.content_type
        )
