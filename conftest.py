"""Shared fixtures: real PostGIS and Redis, never mocks of them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from apps.accounts.models import User
from celery_app import app as celery_app
from tests.factories import UserFactory


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    yield
    cache.clear()


@pytest.fixture
def media_root(settings: Any, tmp_path: Path) -> Path:
    """Uploads and job outputs in the test's own directory."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def eager() -> Iterator[None]:
    """Celery tasks run in-process at commit (unit tests of task bodies; tests/workers.py runs real workers)."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db: None) -> User:
    return UserFactory()


def client_for(user: User | None, *, enforce_csrf: bool = False) -> APIClient:
    """An API client logged in (session) as `user`, or anonymous for None."""
    client = APIClient(enforce_csrf_checks=enforce_csrf)
    if user is not None:
        client.force_login(user)
    return client
