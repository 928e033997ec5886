from __future__ import annotations

import pytest
from django.core import mail

from apps.collaboration.models import MapEvent
from apps.maps.models import Map, MapCollaborator
from apps.workspaces.models import Role
from conftest import client_for
from tests.factories import LayerFactory, MapFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_map():
    map = MapFactory(visibility="private")
    owner = MembershipFactory(workspace=map.workspace, role=Role.OWNER).user
    return owner, map


def test_layers_are_added_reordered_restyled_and_removed_and_each_change_is_logged(owner_map) -> None:
    owner, map = owner_map
    client = client_for(owner)
    layers = [LayerFactory(workspace=map.workspace, name=n) for n in ("Roads", "Buildings", "Trees")]
    for layer in layers:
        assert client.post(f"/api/v1/maps/{map.pk}/layers/", {"layer": str(layer.pk)}, format="json").status_code == 201
    listed = client.get(f"/api/v1/maps/{map.pk}/layers/").json()
    assert [e["layer"]["name"] for e in listed] == ["Roads", "Buildings", "Trees"]

    order = [str(layers[2].pk), str(layers[0].pk), str(layers[1].pk)]
    assert client.post(f"/api/v1/maps/{map.pk}/layers/reorder/", {"layers": order}, format="json").status_code == 200
    assert [e["layer"]["id"] for e in client.get(f"/api/v1/maps/{map.pk}/layers/").json()] == order

    bad = client.post(f"/api/v1/maps/{map.pk}/layers/reorder/", {"layers": order[:2]}, format="json")
    assert bad.status_code == 400 and "layers" in bad.json()["errors"]

    patch = client.patch(
        f"/api/v1/maps/{map.pk}/layers/{layers[0].pk}/", {"opacity": 0.5, "is_visible": False}, format="json"
    )
    assert patch.status_code == 200 and patch.json()["opacity"] == 0.5
    assert client.delete(f"/api/v1/maps/{map.pk}/layers/{layers[1].pk}/").status_code == 204
    assert len(client.get(f"/api/v1/maps/{map.pk}/layers/").json()) == 2

    events = list(MapEvent.objects.for_workspace(map.workspace).filter(map=map).values_list("seq", "type"))
    assert [seq for seq, _ in events] == list(range(1, len(events) + 1))  # gapless, monotonic
    assert [t for _, t in events] == ["map.layer_added"] * 3 + [
        "map.layers_reordered",
        "map.layer_updated",
        "map.layer_removed",
    ]
    feed = client.get(f"/api/v1/maps/{map.pk}/events/?since=4").json()["results"]
    assert [e["seq"] for e in feed] == [5, 6]


def test_adding_a_layer_twice_or_from_another_workspace_is_refused(owner_map) -> None:
    owner, map = owner_map
    client = client_for(owner)
    layer = LayerFactory(workspace=map.workspace)
    assert client.post(f"/api/v1/maps/{map.pk}/layers/", {"layer": str(layer.pk)}, format="json").status_code == 201
    assert client.post(f"/api/v1/maps/{map.pk}/layers/", {"layer": str(layer.pk)}, format="json").status_code == 409
    foreign = LayerFactory()
    assert client.post(f"/api/v1/maps/{map.pk}/layers/", {"layer": str(foreign.pk)}, format="json").status_code == 404


def test_a_guest_invited_by_email_sees_the_map_only_after_accepting_and_loses_it_when_removed(
    owner_map, django_capture_on_commit_callbacks
) -> None:
    owner, map = owner_map
    guest = UserFactory(email="guest@elsewhere.test")
    with django_capture_on_commit_callbacks(execute=True):
        invited = client_for(owner).post(
            f"/api/v1/maps/{map.pk}/collaborators/",
            {"email": "Guest@Elsewhere.test", "permission": "comment"},
            format="json",
        )
    assert invited.status_code == 201, invited.json()
    assert mail.outbox[-1].to == ["guest@elsewhere.test"]

    guest_client = client_for(guest)
    assert guest_client.get(f"/api/v1/maps/{map.pk}/").status_code == 404  # not yet accepted
    mine = guest_client.get("/api/v1/collaborations/").json()["results"]
    assert [c["map"]["id"] for c in mine] == [str(map.pk)]
    assert guest_client.post(f"/api/v1/collaborations/{invited.json()['id']}/accept/").status_code == 200
    seen = guest_client.get(f"/api/v1/maps/{map.pk}/")
    assert seen.status_code == 200 and seen.json()["permissions"] == ["comment", "view"]
    assert [m["id"] for m in guest_client.get("/api/v1/maps/").json()["results"]] == [str(map.pk)]

    removed = client_for(owner).delete(f"/api/v1/maps/{map.pk}/collaborators/{invited.json()['id']}/")
    assert removed.status_code == 204
    assert guest_client.get(f"/api/v1/maps/{map.pk}/").status_code == 404
    assert not MapCollaborator.objects.for_workspace(map.workspace).exists()


def test_rotating_the_share_token_revokes_the_old_link(owner_map) -> None:
    owner, map = owner_map
    client = client_for(owner)
    client.patch(f"/api/v1/maps/{map.pk}/", {"visibility": "public"}, format="json")
    old_url = client.get(f"/api/v1/maps/{map.pk}/").json()["share_url"]
    rotated = client.post(f"/api/v1/maps/{map.pk}/share-token/rotate/").json()["share_url"]
    assert (
        rotated != old_url
        and rotated.rsplit("/", 1)[-1] == Map.objects.for_workspace(map.workspace).get(pk=map.pk).share_token
    )


def test_anyone_may_read_a_public_map_but_not_a_private_one() -> None:
    public, private = MapFactory(visibility="public"), MapFactory(visibility="private")
    anonymous = client_for(None)
    assert anonymous.get(f"/api/v1/maps/{public.pk}/").status_code == 200
    assert anonymous.get(f"/api/v1/maps/{private.pk}/").status_code == 404
    assert anonymous.patch(f"/api/v1/maps/{public.pk}/", {"name": "x"}, format="json").status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "zoom": 30}, "zoom"),
        ({"name": "x", "center": {"type": "Point", "coordinates": [200, 10]}}, "center"),
        ({"name": "x", "center": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}}, "center"),
        ({"name": "x", "visibility": "everyone"}, "visibility"),
        ({"name": ""}, "name"),
        ({"name": "x", "colour": "red"}, "colour"),
    ],
    ids=[
        "zoom out of range",
        "longitude out of range",
        "center not a point",
        "bad visibility",
        "blank name",
        "unknown field",
    ],
)
def test_bad_map_input_is_a_400_naming_the_field_and_creates_nothing(body: dict, field: str) -> None:
    editor = MembershipFactory(role=Role.EDITOR)
    response = client_for(editor.user).post(
        "/api/v1/maps/", {"workspace": editor.workspace.slug, **body}, format="json"
    )
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert field in response.json()["detail"]
    assert not Map.objects.unscoped().exists()
