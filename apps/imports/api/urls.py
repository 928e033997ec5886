"""Routes of the imports API, included under /api/v1/ by config/api_urls.py."""

from __future__ import annotations

urlpatterns: list = []
