"""The admin console for layers and features."""

from __future__ import annotations

import pytest
from django.contrib.gis.geos import Point, Polygon
from django.db import connection, models
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.layers.models import Feature, Layer
from apps.workspaces.admin_base import EstimatedCountPaginator
from apps.workspaces.models import Workspace
from tests.admin_checks import admin_url, assert_admin_pages_open
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db

# A coordinate that appears only inside the polygon's geometry.
POLYGON_MARKER_X = 24.912345


@pytest.fixture
def workspace() -> Workspace:
    return WorkspaceFactory(name="Harbour Survey")


@pytest.fixture
def layer(workspace: Workspace) -> Layer:
    extent = Polygon.from_bbox((24.9, 60.1, 25.0, 60.2))
    extent.srid = 4326
    return Layer.objects.for_workspace(workspace).create(
        workspace=workspace,
        name="Piers",
        category="infrastructure",
        geometry_type="mixed",
        extent=extent,
        feature_count=2,
        style_config={"type": "simple", "color": "#ff0000"},
    )


@pytest.fixture
def point(layer: Layer) -> Feature:
    return Feature.objects.for_workspace(layer.workspace).create(
        workspace=layer.workspace,
        layer=layer,
        geom=Point(24.95, 60.16, srid=4326),
        external_id="pier-7",
        properties={"name": "Pier 7"},
    )


@pytest.fixture
def polygon(layer: Layer) -> Feature:
    shape = Polygon.from_bbox((POLYGON_MARKER_X, 60.15, 24.93, 60.17))
    shape.srid = 4326
    return Feature.objects.for_workspace(layer.workspace).create(
        workspace=layer.workspace, layer=layer, geom=shape, external_id="basin-2", properties={"name": "Basin"}
    )


@pytest.fixture
def objects(layer: Layer, point: Feature, polygon: Feature) -> dict[str, models.Model]:
    return {"layer": layer, "feature": polygon}


@pytest.mark.parametrize(("name", "term"), [("layer", "piers"), ("feature", "basin-2")])
def test_changelist_search_change_and_add_pages_open(
    admin_client: Client, objects: dict[str, models.Model], name: str, term: str
) -> None:
    assert_admin_pages_open(admin_client, objects[name], search_term=term)


@pytest.mark.parametrize(("name", "field"), [("layer", "extent"), ("feature", "geom")])
def test_geometries_are_drawn_with_vendored_openlayers(
    admin_client: Client, objects: dict[str, models.Model], name: str, field: str
) -> None:
    obj = objects[name]

    page = admin_client.get(admin_url(type(obj), "change", obj.pk)).text

    assert f'<div id="id_{field}_map" class="dj_map">' in page
    assert "/static/vendor/ol/ol.js" in page
    assert "cdn.jsdelivr.net" not in page


def test_feature_list_shows_geometry_types_but_never_geometries(
    admin_client: Client, objects: dict[str, models.Model]
) -> None:
    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get(admin_url(Feature, "changelist")).text

    assert "POLYGON" in page
    assert "POINT" in page
    assert str(POLYGON_MARKER_X) not in page
    [listing] = [q["sql"] for q in queries.captured_queries if q["sql"].endswith('ORDER BY "layers_feature"."id" ASC')]
    loaded = listing.split(" FROM ")[0].replace('GeometryType("layers_feature"."geom")', "")
    assert '"layers_feature"."geom' not in loaded
    assert '"layers_feature"."properties"' not in loaded
    assert '"layers_layer"."extent"' not in loaded


def test_features_found_by_id_and_exact_external_id(admin_client: Client, point: Feature, polygon: Feature) -> None:
    by_id = admin_client.get(admin_url(Feature, "changelist"), {"q": str(point.pk)}).text
    by_external_id = admin_client.get(admin_url(Feature, "changelist"), {"q": "pier-7"}).text

    for page in (by_id, by_external_id):
        assert admin_url(Feature, "change", point.pk) in page
        assert admin_url(Feature, "change", polygon.pk) not in page


def test_layer_page_links_to_its_features(admin_client: Client, layer: Layer, point: Feature) -> None:
    page = admin_client.get(admin_url(Layer, "change", layer.pk)).text
    features = admin_client.get(admin_url(Feature, "changelist"), {"layer__id__exact": str(layer.pk)}).text

    assert f"?layer__id__exact={layer.pk}" in page
    assert admin_url(Feature, "change", point.pk) in features


def test_feature_edited_in_the_admin_gets_a_new_version_and_invalidates_tiles(
    admin_client: Client, admin_user: object, layer: Layer, point: Feature
) -> None:
    response = admin_client.post(
        admin_url(Feature, "change", point.pk),
        {"external_id": "pier-7", "geom": "SRID=4326;POINT(24.96 60.17)", "properties": '{"name": "Pier 7b"}'},
    )

    assert response.status_code == 302
    point.refresh_from_db()
    assert point.version == 2
    assert point.properties == {"name": "Pier 7b"}
    assert point.geom.coords == pytest.approx((24.96, 60.17))
    assert point.updated_by == admin_user
    assert Layer.objects.unscoped().get(pk=layer.pk).data_version == layer.data_version + 1


def test_feature_outside_wgs84_is_refused(admin_client: Client, point: Feature) -> None:
    response = admin_client.post(
        admin_url(Feature, "change", point.pk),
        {"external_id": "pier-7", "geom": "SRID=4326;POINT(200 95)", "properties": "{}"},
    )

    assert response.status_code == 200
    assert "out of range" in response.text


def test_feature_added_in_the_admin_counts_on_its_layer(admin_client: Client, layer: Layer) -> None:
    response = admin_client.post(
        admin_url(Feature, "add"),
        {"layer": layer.pk, "external_id": "", "geom": "SRID=4326;POINT(24.97 60.18)", "properties": "{}"},
    )

    assert response.status_code == 302
    added = Feature.objects.for_workspace(layer.workspace).get(layer=layer, geom__equals=Point(24.97, 60.18))
    assert added.workspace_id == layer.workspace_id
    assert Layer.objects.unscoped().get(pk=layer.pk).feature_count == layer.feature_count + 1


def test_extent_is_shown_but_never_written_from_the_form(admin_client: Client, layer: Layer) -> None:
    form = {
        "name": "Piers",
        "description": "",
        "category": "infrastructure",
        "source_type": "vector",
        "geometry_type": "mixed",
        "editable": "everyone",
        "source_config": "{}",
        "style_config": '{"type": "simple", "color": "#00ff00"}',
        "legend_config": "{}",
        "metadata": "{}",
        "extent": "SRID=4326;POLYGON((0 0, 1 0, 1 1, 0 1, 0 0))",
    }

    response = admin_client.post(admin_url(Layer, "change", layer.pk), form)

    assert response.status_code == 302
    saved = Layer.objects.unscoped().get(pk=layer.pk)
    assert saved.extent.extent == pytest.approx((24.9, 60.1, 25.0, 60.2))
    assert saved.style_config["color"] == "#00ff00"


def test_layer_style_is_checked_against_its_schema(admin_client: Client, layer: Layer) -> None:
    form = {
        "name": "Piers",
        "source_type": "vector",
        "geometry_type": "mixed",
        "editable": "everyone",
        "source_config": "{}",
        "style_config": '{"opacity": 7}',
        "legend_config": "{}",
        "metadata": "{}",
    }

    response = admin_client.post(admin_url(Layer, "change", layer.pk), form)

    assert response.status_code == 200
    assert "style_config.opacity" in response.text


def test_unfiltered_counts_of_huge_tables_come_from_planner_statistics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("apps.workspaces.admin_base._planner_row_estimate", lambda table: 5_000_000)

    unfiltered = EstimatedCountPaginator(Feature.objects.unscoped().all(), 100)
    filtered = EstimatedCountPaginator(Feature.objects.unscoped().filter(external_id="x"), 100)

    assert unfiltered.count == 5_000_000
    assert filtered.count == 0
