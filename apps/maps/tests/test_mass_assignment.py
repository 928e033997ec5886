"""Writing server-owned or privileged fields without the right changes nothing."""

from __future__ import annotations

import pytest

from apps.layers.models import Feature
from apps.maps.models import Map
from apps.workspaces.models import Membership, Role
from conftest import client_for
from tests.factories import (
    FeatureFactory,
    MapFactory,
    MapLayerFactory,
    MembershipFactory,
    UserFactory,
    WorkspaceFactory,
)

pytestmark = pytest.mark.django_db


def _stored(map: Map) -> Map:
    return Map.objects.for_workspace(map.workspace_id).get(pk=map.pk)


@pytest.mark.parametrize(
    "field_value",
    [
        {"workspace": "other"},
        {"created_by": 1},
        {"share_token": "chosen-by-attacker"},
        {"last_event_seq": 999},
        {"id": "00000000-0000-0000-0000-000000000000"},
    ],
    ids=lambda d: next(iter(d)),
)
def test_server_owned_map_fields_are_refused_and_nothing_changes(field_value: dict) -> None:
    map = MapFactory(name="Original")
    owner = MembershipFactory(workspace=map.workspace, role=Role.OWNER).user
    before = _stored(map)
    response = client_for(owner).patch(f"/api/v1/maps/{map.pk}/", {"name": "New", **field_value}, format="json")
    assert response.status_code == 400
    field = next(iter(field_value))
    assert field in response.json()["errors"]
    after = _stored(map)
    assert (after.name, after.workspace_id, after.share_token, after.created_by_id, after.last_event_seq) == (
        before.name,
        before.workspace_id,
        before.share_token,
        before.created_by_id,
        before.last_event_seq,
    )


def test_an_editor_cannot_change_the_visibility_of_a_map_they_did_not_create() -> None:
    map = MapFactory(visibility="workspace")
    editor = MembershipFactory(workspace=map.workspace, role=Role.EDITOR).user
    response = client_for(editor).patch(f"/api/v1/maps/{map.pk}/", {"visibility": "public"}, format="json")
    assert response.status_code == 403
    assert _stored(map).visibility == "workspace"


def test_a_viewer_cannot_promote_themselves() -> None:
    membership = MembershipFactory(role=Role.VIEWER)
    client = client_for(membership.user)
    response = client.patch(
        f"/api/v1/workspaces/{membership.workspace.slug}/members/{membership.user_id}/",
        {"role": "owner"},
        format="json",
    )
    assert response.status_code == 403
    assert Membership.objects.get(pk=membership.pk).role == Role.VIEWER


def test_an_admin_cannot_make_anyone_owner_or_demote_an_owner() -> None:
    workspace = WorkspaceFactory()
    admin = MembershipFactory(workspace=workspace, role=Role.ADMIN).user
    owner = MembershipFactory(workspace=workspace, role=Role.OWNER)
    editor = MembershipFactory(workspace=workspace, role=Role.EDITOR)
    client = client_for(admin)
    url = f"/api/v1/workspaces/{workspace.slug}/members/"
    assert client.patch(f"{url}{editor.user_id}/", {"role": "owner"}, format="json").status_code == 403
    assert client.patch(f"{url}{owner.user_id}/", {"role": "viewer"}, format="json").status_code == 403
    assert client.patch(f"{url}{editor.user_id}/", {"role": "viewer"}, format="json").status_code == 200
    roles = dict(Membership.objects.filter(workspace=workspace).values_list("user_id", "role"))
    assert roles[owner.user_id] == Role.OWNER and roles[editor.user_id] == Role.VIEWER


def test_a_new_map_belongs_to_the_named_workspace_and_its_creator_whatever_the_body_says() -> None:
    membership = MembershipFactory(role=Role.EDITOR)
    body = {"workspace": membership.workspace.slug, "name": "Mine", "created_by": UserFactory().pk}
    response = client_for(membership.user).post("/api/v1/maps/", body, format="json")
    assert response.status_code == 400 and "created_by" in response.json()["errors"]
    assert Map.objects.unscoped().count() == 0
    body.pop("created_by")
    response = client_for(membership.user).post("/api/v1/maps/", body, format="json")
    assert response.status_code == 201
    assert response.json()["created_by"]["id"] == membership.user_id


def test_a_map_cannot_be_created_in_a_workspace_one_is_not_a_member_of() -> None:
    mine, foreign = MembershipFactory(role=Role.OWNER), WorkspaceFactory()
    response = client_for(mine.user).post("/api/v1/maps/", {"workspace": foreign.slug, "name": "X"}, format="json")
    assert response.status_code == 404
    assert not Map.objects.unscoped().filter(workspace=foreign).exists()


def test_feature_version_and_layer_cannot_be_written_by_clients() -> None:
    entry = MapLayerFactory()
    editor = MembershipFactory(workspace=entry.map.workspace, role=Role.EDITOR).user
    feature = FeatureFactory(layer=entry.layer, workspace=entry.map.workspace)
    url = f"/api/v1/layers/{entry.layer.pk}/features/{feature.pk}/"
    response = client_for(editor).patch(url, {"properties": {"a": 1}, "layer": "x"}, format="json", HTTP_IF_MATCH='"1"')
    assert response.status_code == 400 and "layer" in response.json()["errors"]
    stored = Feature.objects.for_workspace(feature.workspace_id).get(pk=feature.pk)
    assert stored.version == 1 and "a" not in stored.properties
