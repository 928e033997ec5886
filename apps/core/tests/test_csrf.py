from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.accounts.services import api_token_create
from apps.maps.models import Map
from apps.workspaces.models import Role
from conftest import client_for
from tests.factories import MapFactory, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_and_map():
    map = MapFactory()
    owner = MembershipFactory(workspace=map.workspace, role=Role.OWNER).user
    return owner, map


UNSAFE_CALLS = [
    ("post", "/api/v1/workspaces/", {"name": "Sneaky"}),
    ("patch", "/api/v1/maps/{map}/", {"name": "Renamed by a forged form"}),
    ("delete", "/api/v1/maps/{map}/", None),
    ("post", "/api/v1/me/tokens/", {"name": "stolen"}),
]


@pytest.mark.parametrize(("method", "path", "body"), UNSAFE_CALLS, ids=[f"{m} {p}" for m, p, _ in UNSAFE_CALLS])
def test_session_requests_without_a_csrf_token_are_refused(owner_and_map, method, path, body) -> None:
    owner, map = owner_and_map
    client = client_for(owner, enforce_csrf=True)
    response = getattr(client, method)(path.format(map=map.pk), body, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert Map.objects.for_workspace(map.workspace).get(pk=map.pk).name == map.name


def test_session_requests_with_the_csrf_token_succeed(owner_and_map) -> None:
    owner, map = owner_and_map
    client = client_for(owner, enforce_csrf=True)
    client.get("/api/v1/maps/", HTTP_ACCEPT="text/html")  # the browsable API page sets the cookie
    token = client.cookies.get("csrftoken")
    assert token is not None
    response = client.patch(f"/api/v1/maps/{map.pk}/", {"name": "Renamed"}, format="json", HTTP_X_CSRFTOKEN=token.value)
    assert response.status_code == 200, response.json()
    assert response.json()["name"] == "Renamed"


def test_token_authenticated_scripts_need_no_csrf_token(owner_and_map) -> None:
    owner, map = owner_and_map
    _, key = api_token_create(user=owner, name="script")
    client = APIClient(enforce_csrf_checks=True)
    response = client.patch(
        f"/api/v1/maps/{map.pk}/", {"name": "Scripted"}, format="json", HTTP_AUTHORIZATION=f"Token {key}"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["name"] == "Scripted"
