from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from apps.imports import services
from apps.imports.api.serializers import ImportInputSerializer
from apps.imports.types import ImportMode
from apps.imports.uploads import FILE_FIELD, ImportUploadHandler, import_directory, import_max_bytes
from apps.jobs.api.serializers import JobSerializer
from apps.workspaces.api.base import ApiViewSet


class ImportViewSet(ApiViewSet):
    """Upload a file, or name a URL, to import; answers 202 with the job to poll at /api/v1/jobs/<id>/."""

    parser_classes = [MultiPartParser, JSONParser]
    serializer_class = JobSerializer

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Request:
        # Before anything reads the body (session auth's CSRF check reads request.POST).
        self.job_id = uuid.uuid4()
        self.upload = ImportUploadHandler(directory=import_directory(self.job_id), max_bytes=import_max_bytes())
        if request.method == "POST":
            request.upload_handlers = [self.upload]
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(
        request={"multipart/form-data": ImportInputSerializer, "application/json": ImportInputSerializer},
        responses={202: JobSerializer},
    )
    def create(self, request: Request) -> Response:
        try:
            fields = self.validated_input(ImportInputSerializer)
            data = services.ImportInput(
                workspace=fields["workspace"],
                mode=ImportMode(fields["mode"]),
                layer=fields.get("layer"),
                name=fields.get("name", ""),
                source_layer=fields.get("source_layer"),
                layers=fields.get("layers"),
                srid=fields.get("srid"),
                key=fields.get("key"),
                delete_missing=fields.get("delete_missing", False),
                url=fields.get("url"),
                url_format=fields.get("format"),
            )
            upload = self.upload.stored if request.FILES.get(FILE_FIELD) is not None else None
            job = services.import_create(
                actor=self.actor, user=request.user, data=data, upload=upload, job_id=self.job_id
            )
        except BaseException:
            self.upload.discard()
            raise
        return Response(self.get_serializer(job).data, status=status.HTTP_202_ACCEPTED)
