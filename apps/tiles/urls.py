"""Vector tile routes, included under /tiles/ by config/urls.py."""

from __future__ import annotations

urlpatterns: list = []
