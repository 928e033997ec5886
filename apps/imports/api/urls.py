"""Routes of the imports API, included under /api/v1/ by config/api_urls.py."""

from __future__ import annotations

from django.urls import path

from apps.imports.api.exports import LayerExportViewSet
from apps.imports.api.views import ImportViewSet

urlpatterns = [
    path("imports/", ImportViewSet.as_view({"post": "create"}), name="import-list"),
    path("layers/<uuid:layer_id>/export/", LayerExportViewSet.as_view({"get": "retrieve"}), name="layer-export"),
]
