from __future__ import annotations

import pytest
from django.test import Client

from apps.workspaces.models import Role
from tests.factories import CollaboratorFactory, MapFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def test_the_dashboard_lists_my_workspaces_maps_and_maps_shared_with_me_only() -> None:
    mine = MembershipFactory(role=Role.EDITOR)
    my_map = MapFactory(workspace=mine.workspace, name="Harbour survey")
    shared = CollaboratorFactory(user=mine.user, map__name="Partner map").map
    MapFactory(name="Someone else's map")
    browser = Client()
    browser.force_login(mine.user)
    page = browser.get("/").content.decode()
    assert mine.workspace.name in page and my_map.name in page
    assert "Shared with you" in page and shared.name in page
    assert "Someone else" not in page


def test_visitors_see_the_login_links() -> None:
    page = Client().get("/").content.decode()
    assert "/accounts/login/" in page and "/accounts/signup/" in page
