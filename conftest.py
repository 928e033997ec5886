"""Shared fixtures: real PostGIS and Redis, never mocks of them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from apps.accounts.models import User
from tests.factories import UserFactory


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    yield
    cache.clear()


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
