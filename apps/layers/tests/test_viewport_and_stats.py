from __future__ import annotations

import pytest
from django.contrib.gis.geos import Point
from django.db import connection

from apps.layers.models import Layer
from conftest import client_for
from tests.factories import FeatureFactory, LayerFactory, MembershipFactory

pytestmark = pytest.mark.django_db

VIEW = "west=24.8&south=60.1&east=25.1&north=60.3"


@pytest.fixture
def small_layer():
    layer = LayerFactory(geometry_type="point", is_global=True)
    layer.attribute_schema = {"price": "integer", "status": "string"}
    layer.save()
    for x, price, status in [(24.90, 100, "active"), (24.95, 300, "sold"), (25.00, 500, "active"), (2.35, 900, "x")]:
        FeatureFactory(
            layer=layer,
            geom=Point(x, 60.2 if x > 20 else 48.85, srid=4326),
            properties={"price": price, "status": status},
        )
    return layer, MembershipFactory(workspace=layer.workspace).user


@pytest.fixture
def big_layer():
    layer = LayerFactory(geometry_type="point", is_global=True)
    layer.attribute_schema = {"price": "integer"}
    layer.save()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO layers_feature (created_at, updated_at, workspace_id, layer_id, geom, properties, version)
            SELECT now(), now(), %s, %s, ST_SetSRID(ST_MakePoint(24.9 + (i %% 50) * 1e-5, 60.2), 4326),
                   jsonb_build_object('price', i), 1
            FROM generate_series(1, 6000) AS i
            """,
            [layer.workspace_id, layer.pk],
        )
    Layer.objects.for_workspace(layer.workspace_id).filter(pk=layer.pk).update(feature_count=6000)
    return layer, MembershipFactory(workspace=layer.workspace).user


def test_high_zoom_viewport_lists_attributes_of_features_in_view_only(small_layer) -> None:
    layer, member = small_layer
    body = client_for(member).get(f"/api/v1/layers/{layer.pk}/viewport/?{VIEW}&zoom=14&status=active").json()
    assert body["kind"] == "features" and body["truncated"] is False
    assert sorted(f["properties"]["price"] for f in body["features"]) == [100, 500]
    assert "geometry" not in body["features"][0]


def test_viewport_caps_features_and_says_so(small_layer) -> None:
    layer, member = small_layer
    body = client_for(member).get(f"/api/v1/layers/{layer.pk}/viewport/?{VIEW}&zoom=14&limit=2").json()
    assert len(body["features"]) == 2 and body["truncated"] is True


def test_low_zoom_viewport_returns_clusters_with_min_avg_max(big_layer) -> None:
    layer, member = big_layer
    body = client_for(member).get(f"/api/v1/layers/{layer.pk}/viewport/?{VIEW}&zoom=6").json()
    assert body["kind"] == "clusters"
    assert [c["count"] for c in body["clusters"]] == [6000]
    assert body["clusters"][0]["stats"]["price"] == {"min": 1.0, "avg": 3000.5, "max": 6000.0}
    lon, lat = body["clusters"][0]["centroid"]
    assert 24.9 <= lon <= 24.901 and lat == pytest.approx(60.2)


def test_a_view_across_the_antimeridian_covers_both_sides() -> None:
    layer = LayerFactory(geometry_type="point", is_global=True)
    member = MembershipFactory(workspace=layer.workspace).user
    for x in (179.5, -179.5, 0):
        FeatureFactory(layer=layer, geom=Point(x, 0, srid=4326), properties={})
    body = client_for(member).get(f"/api/v1/layers/{layer.pk}/viewport/?west=179&east=-179&south=-1&north=1&zoom=8")
    assert len(body.json()["features"]) == 2


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("west=0&south=10&east=1&north=5&zoom=3", "north"),
        ("west=0&south=0&east=1&north=1", "zoom"),
        ("west=-200&south=0&east=1&north=1&zoom=3", "west"),
        ("west=a&south=0&east=1&north=1&zoom=3", "west"),
        (f"{VIEW}&zoom=14&floors=3", "floors"),
    ],
)
def test_a_bad_viewport_is_a_400_naming_the_parameter(small_layer, query: str, field: str) -> None:
    layer, member = small_layer
    response = client_for(member).get(f"/api/v1/layers/{layer.pk}/viewport/?{query}")
    assert response.status_code == 400 and response.json()["detail"].startswith(field)


def test_stats_give_ranges_quantiles_and_common_values(small_layer) -> None:
    layer, member = small_layer
    stats = client_for(member).get(f"/api/v1/layers/{layer.pk}/stats/").json()["attributes"]
    assert stats["price"]["min"] == 100 and stats["price"]["max"] == 900
    assert stats["price"]["quantiles"]["median"] == 400
    assert stats["status"]["distinct"] == 3
    assert stats["status"]["values"][0] == {"value": "active", "count": 2}


def test_stats_follow_edits(small_layer) -> None:
    layer, _viewer = small_layer
    client = client_for(MembershipFactory(workspace=layer.workspace, role="editor").user)
    assert client.get(f"/api/v1/layers/{layer.pk}/stats/").json()["attributes"]["price"]["max"] == 900
    client.post(
        f"/api/v1/layers/{layer.pk}/features/",
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 1]}, "properties": {"price": 5000}},
        format="json",
    )
    assert client.get(f"/api/v1/layers/{layer.pk}/stats/").json()["attributes"]["price"]["max"] == 5000


def test_feature_lists_take_the_same_filters_as_tiles(small_layer) -> None:
    layer, member = small_layer
    client = client_for(member)
    listed = client.get(f"/api/v1/layers/{layer.pk}/features/?price__gte=300&status=active").json()
    assert [f["properties"]["price"] for f in listed["features"]] == [500]
    rows = client.get(f"/api/v1/layers/{layer.pk}/features/attributes/?status__in=sold,x").json()["results"]
    assert sorted(r["properties"]["price"] for r in rows) == [300, 900]
    bad = client.get(f"/api/v1/layers/{layer.pk}/features/?price__gte=lots")
    assert bad.status_code == 400 and bad.json()["detail"].startswith("price__gte")


@pytest.mark.parametrize(
    ("query", "prices"),
    [
        ("price__gte=0", [100, 300]),
        ("price__ne=100", [300]),
        ("price__in=100,300", [100, 300]),
        ("price__lt=200", [100]),
        ("price=300", [300]),
    ],
)
def test_numeric_filters_pass_over_stray_strings_and_nulls_instead_of_failing(query: str, prices: list) -> None:
    """Imported data can hold a string or null under a numeric attribute: no operator matches it, nothing errors."""
    layer = LayerFactory(geometry_type="point", is_global=True)
    layer.attribute_schema = {"price": "integer"}
    layer.save()
    for price in [100, 300, "n/a", None]:
        FeatureFactory(layer=layer, geom=Point(24.95, 60.2, srid=4326), properties={"price": price})
    FeatureFactory(layer=layer, geom=Point(24.95, 60.2, srid=4326), properties={})
    client = client_for(MembershipFactory(workspace=layer.workspace).user)

    listed = client.get(f"/api/v1/layers/{layer.pk}/features/?{query}")
    viewport = client.get(f"/api/v1/layers/{layer.pk}/viewport/?{VIEW}&zoom=16&{query}")

    assert listed.status_code == 200, listed.content
    assert sorted(f["properties"]["price"] for f in listed.json()["features"]) == prices
    assert viewport.status_code == 200, viewport.content
    assert sorted(f["properties"]["price"] for f in viewport.json()["features"]) == prices


def test_low_zoom_clusters_with_a_numeric_filter_pass_over_stray_strings(big_layer) -> None:
    layer, member = big_layer
    with connection.cursor() as cursor:  # every 10th price is text, as a sloppy import leaves it
        cursor.execute(
            "UPDATE layers_feature SET properties = jsonb_build_object('price', 'n/a') "
            "WHERE layer_id = %s AND (properties ->> 'price')::int %% 10 = 0",
            [layer.pk],
        )
    response = client_for(member).get(f"/api/v1/layers/{layer.pk}/viewport/?{VIEW}&zoom=6&price__gte=0")
    assert response.status_code == 200, response.content
    assert [c["count"] for c in response.json()["clusters"]] == [5400]
