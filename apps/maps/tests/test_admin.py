"""The admin console for maps, the layers on them and their collaborators."""

from __future__ import annotations

import pytest
from django.contrib.gis.geos import Point
from django.db import models
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.layers.models import Layer
from apps.maps.models import Map, MapCollaborator, MapLayer
from apps.workspaces.models import Workspace
from tests.admin_checks import admin_url, assert_admin_pages_open
from tests.factories import LayerFactory, MapFactory, UserFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db

NO_INLINE_ROWS = {
    f"{prefix}-{key}": "0" for prefix in ("map_layers", "collaborators") for key in ("TOTAL_FORMS", "INITIAL_FORMS")
}


@pytest.fixture
def workspace() -> Workspace:
    return WorkspaceFactory(name="Harbour Survey")


@pytest.fixture
def map(workspace: Workspace) -> Map:
    return Map.objects.for_workspace(workspace).create(
        workspace=workspace, name="Quay walls", center=Point(24.95, 60.16, srid=4326), zoom=14
    )


@pytest.fixture
def layer(workspace: Workspace) -> Layer:
    return Layer.objects.for_workspace(workspace).create(workspace=workspace, name="Bollards", geometry_type="point")


@pytest.fixture
def map_layer(map: Map, layer: Layer) -> MapLayer:
    return MapLayer.objects.for_workspace(map.workspace).create(workspace=map.workspace, map=map, layer=layer)


@pytest.fixture
def collaborator(map: Map) -> MapCollaborator:
    guest = UserFactory(email="consultant@example.test")
    return MapCollaborator.objects.for_workspace(map.workspace).create(
        workspace=map.workspace, map=map, user=guest, email=guest.email, permission="comment"
    )


@pytest.fixture
def objects(map: Map, map_layer: MapLayer, collaborator: MapCollaborator) -> dict[str, models.Model]:
    return {"map": map, "map_layer": map_layer, "collaborator": collaborator}


@pytest.mark.parametrize(("name", "term"), [("map", "quay"), ("map_layer", "bollards"), ("collaborator", "consultant")])
def test_changelist_search_change_and_add_pages_open(
    admin_client: Client, objects: dict[str, models.Model], name: str, term: str
) -> None:
    assert_admin_pages_open(admin_client, objects[name], search_term=term)


@pytest.mark.parametrize("name", ["map", "map_layer", "collaborator"])
def test_history_and_delete_confirmation_pages_open(
    admin_client: Client, objects: dict[str, models.Model], name: str
) -> None:
    obj = objects[name]

    assert admin_client.get(admin_url(type(obj), "history", obj.pk)).status_code == 200
    assert admin_client.get(admin_url(type(obj), "delete", obj.pk)).status_code == 200


def test_map_page_draws_the_center_with_vendored_openlayers(admin_client: Client, map: Map) -> None:
    page = admin_client.get(admin_url(Map, "change", map.pk)).text

    assert '<div id="id_center_map" class="dj_map">' in page
    assert "/static/vendor/ol/ol.js" in page
    assert "/static/vendor/ol/ol.css" in page
    assert "cdn.jsdelivr.net" not in page


def test_map_page_shows_its_layers_and_collaborators_inline(
    admin_client: Client, objects: dict[str, models.Model]
) -> None:
    map = objects["map"]

    page = admin_client.get(admin_url(Map, "change", map.pk)).text

    assert 'name="map_layers-0-layer"' in page
    assert "Bollards" in page
    assert 'value="consultant@example.test"' in page
    assert map.share_token in page


def test_layer_autocomplete_finds_layers_outside_any_workspace_scope(admin_client: Client, layer: Layer) -> None:
    response = admin_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "maps", "model_name": "maplayer", "field_name": "layer", "term": "bollard"},
    )

    assert response.status_code == 200
    assert response.json()["results"] == [{"id": str(layer.pk), "text": "Bollards"}]


def test_maps_found_by_exact_share_token(admin_client: Client, map: Map) -> None:
    page = admin_client.get(admin_url(Map, "changelist"), {"q": map.share_token}).text

    assert admin_url(Map, "change", map.pk) in page


def test_map_added_in_the_admin_lands_in_the_chosen_workspace(
    admin_client: Client, admin_user: User, workspace: Workspace
) -> None:
    response = admin_client.post(
        admin_url(Map, "add"),
        {
            "workspace": workspace.pk,
            "name": "Ferry routes",
            "visibility": "workspace",
            "center": "SRID=4326;POINT(24.96 60.15)",
            "zoom": "11",
            "bearing": "0",
            "pitch": "0",
            "basemap": "bright",
            **NO_INLINE_ROWS,
        },
    )

    assert response.status_code == 302
    created = Map.objects.for_workspace(workspace).get(name="Ferry routes")
    assert created.created_by == admin_user
    assert created.center.coords == pytest.approx((24.96, 60.15))


def test_map_without_a_workspace_is_refused(admin_client: Client) -> None:
    response = admin_client.post(
        admin_url(Map, "add"),
        {
            "name": "Nowhere",
            "visibility": "workspace",
            "center": "",
            "zoom": "2",
            "bearing": "0",
            "pitch": "0",
            "basemap": "bright",
            **NO_INLINE_ROWS,
        },
    )

    assert response.status_code == 200
    assert "Choose a workspace." in response.text
    assert not Map.objects.unscoped().filter(name="Nowhere").exists()


def test_layer_of_another_workspace_cannot_be_put_on_a_map(admin_client: Client, map: Map) -> None:
    foreign_layer = LayerFactory(name="Someone else's data")

    response = admin_client.post(
        admin_url(MapLayer, "add"),
        {"map": map.pk, "layer": foreign_layer.pk, "display_order": "0", "is_visible": "on", "opacity": "1"},
    )

    assert response.status_code == 200
    assert "This belongs to another workspace." in response.text
    assert not MapLayer.objects.unscoped().filter(layer=foreign_layer).exists()


def test_layer_added_inline_takes_the_map_workspace(admin_client: Client, map: Map, layer: Layer) -> None:
    form = {
        "name": map.name,
        "description": "",
        "visibility": map.visibility,
        "center": map.center.ewkt,
        "zoom": "14",
        "bearing": "0",
        "pitch": "0",
        "basemap": "bright",
        **NO_INLINE_ROWS,
        "map_layers-TOTAL_FORMS": "1",
        "map_layers-0-layer": layer.pk,
        "map_layers-0-display_order": "3",
        "map_layers-0-is_visible": "on",
        "map_layers-0-opacity": "0.5",
    }

    response = admin_client.post(admin_url(Map, "change", map.pk), form)

    assert response.status_code == 302
    entry = MapLayer.objects.for_workspace(map.workspace).get(map=map, layer=layer)
    assert (entry.display_order, entry.opacity) == (3, 0.5)


def test_rotating_the_share_token_breaks_the_old_link(admin_client: Client, map: Map) -> None:
    old_token = map.share_token

    admin_client.post(admin_url(Map, "changelist"), {"action": "rotate_share_token", "_selected_action": [map.pk]})

    map.refresh_from_db()
    assert map.share_token != old_token
    assert not Map.objects.unscoped().filter(share_token=old_token).exists()


def test_changelist_lists_maps_of_every_workspace(admin_client: Client, map: Map) -> None:
    other = MapFactory(name="Another tenant's map")

    page = admin_client.get(admin_url(Map, "changelist")).text

    assert admin_url(Map, "change", map.pk) in page
    assert admin_url(Map, "change", other.pk) in page
