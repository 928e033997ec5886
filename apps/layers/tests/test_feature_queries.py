from __future__ import annotations

import pytest
from django.contrib.gis.geos import Point

from apps.layers.models import Feature
from apps.workspaces.models import Role
from conftest import client_for
from tests.factories import FeatureFactory, LayerFactory, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def layer_and_member():
    layer = LayerFactory(is_global=True, geometry_type="point")
    member = MembershipFactory(workspace=layer.workspace, role=Role.EDITOR).user
    return layer, member


def _points(layer, coordinates):
    return [FeatureFactory(layer=layer, workspace=layer.workspace, geom=Point(x, y, srid=4326)) for x, y in coordinates]


def test_bbox_returns_only_features_inside(layer_and_member) -> None:
    layer, member = layer_and_member
    inside, _outside = _points(layer, [(24.94, 60.17), (2.35, 48.85)])
    body = client_for(member).get(f"/api/v1/layers/{layer.pk}/features/?bbox=24,60,25,61").json()
    assert body["type"] == "FeatureCollection"
    assert [f["id"] for f in body["features"]] == [inside.pk]


@pytest.mark.parametrize(
    ("bbox", "fragment"),
    [("1,2,3", "west,south,east,north"), ("0,50,1,40", "south"), ("0,0,181,1", "range"), ("a,b,c,d", "numbers")],
)
def test_a_bad_bbox_is_a_400_naming_bbox(layer_and_member, bbox: str, fragment: str) -> None:
    layer, member = layer_and_member
    response = client_for(member).get(f"/api/v1/layers/{layer.pk}/features/?bbox={bbox}")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("bbox") and fragment in response.json()["detail"]


def test_cursor_pages_walk_every_feature_once_in_id_order(layer_and_member) -> None:
    layer, member = layer_and_member
    created = _points(layer, [(24.9 + i / 1000, 60.1) for i in range(25)])
    client, seen = client_for(member), []
    url = f"/api/v1/layers/{layer.pk}/features/?page_size=10"
    while url:
        page = client.get(url).json()
        seen += [f["id"] for f in page["features"]]
        url = page["next"]
    assert seen == [f.pk for f in created]


def test_an_over_large_page_is_refused_not_clamped(layer_and_member) -> None:
    layer, member = layer_and_member
    response = client_for(member).get(f"/api/v1/layers/{layer.pk}/features/?page_size=100000")
    assert response.status_code == 400 and "page_size" in response.json()["errors"]


def test_attributes_come_without_geometry(layer_and_member) -> None:
    layer, member = layer_and_member
    _points(layer, [(24.9, 60.1)])
    rows = client_for(member).get(f"/api/v1/layers/{layer.pk}/features/attributes/").json()["results"]
    assert set(rows[0]) == {"id", "version", "external_id", "properties", "updated_at"}


def _feature(coordinates, **properties):
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": coordinates}, "properties": properties}


def test_bulk_create_is_all_or_nothing_and_names_the_bad_feature(layer_and_member) -> None:
    layer, member = layer_and_member
    client = client_for(member)
    good = client.post(
        f"/api/v1/layers/{layer.pk}/features/",
        {"type": "FeatureCollection", "features": [_feature([24.9, 60.1], n=1), _feature([25, 60], n=2)]},
        format="json",
    )
    assert good.status_code == 201 and len(good.json()["features"]) == 2
    bad = client.post(
        f"/api/v1/layers/{layer.pk}/features/",
        {"type": "FeatureCollection", "features": [_feature([24.9, 60.1]), _feature([500, 6600])]},
        format="json",
    )
    assert bad.status_code == 400
    assert bad.json()["detail"].startswith("features[1].geometry") and "range" in bad.json()["detail"]
    assert Feature.objects.for_workspace(layer.workspace).filter(layer=layer).count() == 2
    layer.refresh_from_db()
    assert layer.feature_count == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_feature([24.9, 60.1]) | {"geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}}, "geometry"),
        (_feature([24.9, 60.1]) | {"geometry": {"type": "Point", "coordinates": ["x"]}}, "geometry"),
        (_feature([24.9, 60.1]) | {"geometry": {"type": "Blob"}}, "geometry"),
        (_feature([24.9, 60.1]) | {"properties": {"nested": {"a": 1}}}, "properties.nested"),
        (_feature([24.9, 60.1]) | {"properties": [1, 2]}, "properties"),
        (_feature([24.9, 60.1]) | {"layer": "other"}, "layer"),
        ({"geometry": {"type": "Point", "coordinates": [1, 1]}}, "type"),
    ],
    ids=[
        "wrong geometry family",
        "garbage coordinates",
        "unknown geometry type",
        "nested property",
        "properties not an object",
        "unknown field",
        "not a Feature",
    ],
)
def test_bad_feature_input_is_a_400_naming_the_field(layer_and_member, body: dict, field: str) -> None:
    layer, member = layer_and_member
    response = client_for(member).post(f"/api/v1/layers/{layer.pk}/features/", body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["detail"].startswith(field)
    assert not Feature.objects.for_workspace(layer.workspace).exists()


def test_a_property_of_the_wrong_type_is_refused_against_the_schema(layer_and_member) -> None:
    layer, member = layer_and_member
    client = client_for(member)
    assert (
        client.post(
            f"/api/v1/layers/{layer.pk}/features/", _feature([24.9, 60.1], price=350000), format="json"
        ).status_code
        == 201
    )
    response = client.post(f"/api/v1/layers/{layer.pk}/features/", _feature([24.9, 60.1], price="cheap"), format="json")
    assert response.status_code == 400 and "properties.price" in response.json()["detail"]


def test_invalid_json_is_a_400() -> None:
    layer = LayerFactory()
    member = MembershipFactory(workspace=layer.workspace, role=Role.OWNER).user
    response = client_for(member).post(
        f"/api/v1/layers/{layer.pk}/features/", "{not json", content_type="application/json"
    )
    assert response.status_code == 400 and "JSON" in response.json()["detail"]


def test_an_over_large_body_is_refused(settings, layer_and_member) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    layer, member = layer_and_member
    body = _feature([24.9, 60.1], text="x" * 2000)
    response = client_for(member).post(f"/api/v1/layers/{layer.pk}/features/", body, format="json")
    assert response.status_code == 413
    assert "1000 bytes" in response.json()["detail"]
    assert not Feature.objects.for_workspace(layer.workspace).exists()


def test_listing_layers_costs_the_same_queries_for_3_or_30_layers(django_assert_max_num_queries) -> None:
    from tests.factories import MapFactory, MapLayerFactory

    member = MembershipFactory(role=Role.EDITOR)
    map = MapFactory(workspace=member.workspace)
    client = client_for(member.user)
    for count in (3, 30):
        for _ in range(count - (3 if count == 30 else 0)):
            MapLayerFactory(map=map, layer__workspace=member.workspace)
        with django_assert_max_num_queries(12):
            listed = client.get(f"/api/v1/layers/?workspace={member.workspace.slug}").json()
        assert listed["count"] == count
        assert all(layer["permissions"] == ["edit", "view"] for layer in listed["results"])
