"""The admin console for workspaces, members and invitations; the cross-tenant admin base."""

from __future__ import annotations

import pytest
from django.contrib.staticfiles import finders
from django.db import models
from django.test import Client

from apps.accounts.models import User
from apps.maps.models import Map
from apps.workspaces.models import Invitation, Membership, Role, Workspace
from apps.workspaces.tenancy import current_workspace_id
from tests.admin_checks import admin_url, assert_admin_pages_open
from tests.factories import MapFactory, MembershipFactory, UserFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def workspace(admin_user: User) -> Workspace:
    return WorkspaceFactory(name="Harbour Survey", slug="harbour-survey", created_by=admin_user)


@pytest.fixture
def membership(workspace: Workspace) -> Membership:
    return MembershipFactory(workspace=workspace, user=UserFactory(email="surveyor@example.test"), role=Role.EDITOR)


@pytest.fixture
def invitation(workspace: Workspace, admin_user: User) -> Invitation:
    return Invitation.objects.create(workspace=workspace, email="newcomer@example.test", invited_by=admin_user)


@pytest.fixture
def objects(workspace: Workspace, membership: Membership, invitation: Invitation) -> dict[str, models.Model]:
    return {"workspace": workspace, "membership": membership, "invitation": invitation}


SEARCHES = [("workspace", "harbour"), ("membership", "surveyor@"), ("invitation", "newcomer")]


@pytest.mark.parametrize(("name", "term"), SEARCHES)
def test_changelist_search_change_and_add_pages_open(
    admin_client: Client, objects: dict[str, models.Model], name: str, term: str
) -> None:
    assert_admin_pages_open(admin_client, objects[name], search_term=term)


def test_workspace_page_shows_members_and_invitations_inline(
    admin_client: Client, objects: dict[str, models.Model]
) -> None:
    workspace = objects["workspace"]

    page = admin_client.get(admin_url(Workspace, "change", workspace.pk)).text

    assert "surveyor@example.test" in page
    assert 'value="newcomer@example.test"' in page
    assert f"/admin/maps/map/?workspace__id__exact={workspace.pk}" in page


def test_workspace_added_in_the_admin_records_who_created_it(admin_client: Client, admin_user: User) -> None:
    management = {
        f"{prefix}-{key}": value
        for prefix in ("memberships", "invitations")
        for key, value in (("TOTAL_FORMS", "0"), ("INITIAL_FORMS", "0"))
    }
    response = admin_client.post(
        admin_url(Workspace, "add"), {"name": "Delta", "slug": "delta", "description": "", **management}
    )

    assert response.status_code == 302
    assert Workspace.objects.get(slug="delta").created_by == admin_user


def test_closing_an_invitation_in_the_admin_records_when(admin_client: Client, invitation: Invitation) -> None:
    response = admin_client.post(
        admin_url(Invitation, "change", invitation.pk),
        {
            "email": invitation.email,
            "role": "viewer",
            "status": "revoked",
            "expires_at_0": "2099-01-01",
            "expires_at_1": "00:00:00",
        },
    )

    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.status == "revoked"
    assert invitation.responded_at is not None


def test_revoke_action_closes_only_pending_invitations(admin_client: Client, invitation: Invitation) -> None:
    response = admin_client.post(
        admin_url(Invitation, "changelist"), {"action": "revoke", "_selected_action": [invitation.pk]}
    )

    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.status == "revoked"
    assert invitation.responded_at is not None


def test_admin_lists_tenant_rows_of_every_workspace_and_leaves_no_scope_behind(admin_client: Client) -> None:
    maps = [MapFactory(name="North map"), MapFactory(name="South map")]

    page = admin_client.get(admin_url(Map, "changelist")).text

    assert all(admin_url(Map, "change", m.pk) in page for m in maps)
    assert current_workspace_id() is None


def test_deleting_a_workspace_lists_and_removes_its_tenant_rows(admin_client: Client, workspace: Workspace) -> None:
    map = MapFactory(workspace=workspace, name="Doomed map")
    delete_url = admin_url(Workspace, "delete", workspace.pk)

    confirmation = admin_client.get(delete_url)
    response = admin_client.post(delete_url, {"post": "yes"})

    assert confirmation.status_code == 200
    assert "Doomed map" in confirmation.text
    assert response.status_code == 302
    assert not Map.objects.unscoped().filter(pk=map.pk).exists()


def test_non_staff_users_are_sent_to_the_login_page(client: Client, objects: dict[str, models.Model]) -> None:
    client.force_login(UserFactory())

    response = client.get(admin_url(Map, "changelist"))

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_vendored_openlayers_is_served_from_our_static_files(client: Client) -> None:
    assert finders.find("vendor/ol/ol.js"), "run `make assets` (compose/local/vendor-assets.sh)"

    for path in ("/static/vendor/ol/ol.js", "/static/vendor/ol/ol.css"):
        response = client.get(path)
        assert response.status_code == 200
        assert b"".join(response.streaming_content)
