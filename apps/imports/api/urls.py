"""Routes of the imports API, included under /api/v1/ by config/api_urls.py."""

from __future__ import annotations

from django.urls import path

from apps.imports.api.views import ImportViewSet

urlpatterns = [
    path("imports/", ImportViewSet.as_view({"post": "create"}), name="import-list"),
]
