from __future__ import annotations

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_openapi_schema_describes_every_resource() -> None:
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]
    for resource in ("/api/v1/workspaces/", "/api/v1/maps/", "/api/v1/layers/", "/api/v1/comments/", "/api/v1/jobs/"):
        assert resource in paths
    assert "/api/v1/layers/{layer_pk}/features/{id}/" in paths
    assert "apiToken" in schema["components"]["securitySchemes"]


def test_the_api_docs_load_nothing_from_other_origins() -> None:
    page = Client().get("/api/docs/").content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and all(url.startswith("/static/") or url.startswith("/api/") for url in assets), assets
