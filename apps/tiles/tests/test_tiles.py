"""Vector tiles decoded and checked feature by feature, as a map client would see them."""

from __future__ import annotations

import gzip
import math

import mapbox_vector_tile
import pytest
from django.contrib.gis.geos import LineString, Point
from django.db import connection
from django.test import Client

from apps.layers.models import Layer
from apps.maps.models import Map
from apps.tiles.mvt import MAX_TILE_BYTES
from apps.workspaces.models import Role
from conftest import client_for
from tests.factories import FeatureFactory, LayerFactory, MapLayerFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

HELSINKI = (24.94, 60.17)


def tile_xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def decode(response) -> list[dict]:
    assert response.status_code == 200, (response.status_code, getattr(response, "content", b"")[:200])
    body = response.content
    if response.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return mapbox_vector_tile.decode(body)["features"]["features"]


def tile_url(layer: Layer, z: int, lon: float = HELSINKI[0], lat: float = HELSINKI[1], query: str = "") -> str:
    x, y = tile_xy(lon, lat, z)
    return f"/tiles/layers/{layer.pk}/{z}/{x}/{y}.mvt" + (f"?{query}" if query else "")


@pytest.fixture
def listings():
    """A workspace map with a points layer of listings around Helsinki, and its editor."""
    entry = MapLayerFactory(map__visibility="workspace", layer__geometry_type="point")
    layer = entry.layer
    layer.attribute_schema = {"price": "integer", "status": "string", "listed_at": "date", "sauna": "boolean"}
    layer.save()
    rows = [
        (24.940, 60.170, {"price": 250000, "status": "active", "listed_at": "2026-01-10", "sauna": True}),
        (24.941, 60.171, {"price": 410000, "status": "active", "listed_at": "2025-12-01", "sauna": False}),
        (24.942, 60.169, {"price": 520000, "status": "sold", "listed_at": "2026-02-03", "sauna": True}),
    ]
    features = [FeatureFactory(layer=layer, geom=Point(x, y, srid=4326), properties=p) for x, y, p in rows]
    editor = MembershipFactory(workspace=layer.workspace, role=Role.EDITOR).user
    return entry.map, layer, features, editor


def test_a_tile_carries_each_feature_with_its_id_and_attributes(listings) -> None:
    _map, layer, features, editor = listings
    decoded = decode(client_for(editor).get(tile_url(layer, 14), HTTP_ACCEPT_ENCODING="gzip"))
    assert sorted(f["id"] for f in decoded) == sorted(f.pk for f in features)
    by_id = {f["id"]: f for f in decoded}
    assert by_id[features[0].pk]["properties"] == {
        "price": 250000,
        "status": "active",
        "listed_at": "2026-01-10",
        "sauna": True,
    }
    assert by_id[features[0].pk]["geometry"]["type"] == "Point"


def test_tiles_are_gzipped_for_clients_that_accept_it(listings) -> None:
    _map, layer, _features, editor = listings
    client = client_for(editor)
    zipped = client.get(tile_url(layer, 14), HTTP_ACCEPT_ENCODING="gzip, deflate")
    plain = client.get(tile_url(layer, 14))
    assert zipped["Content-Encoding"] == "gzip" and "Content-Encoding" not in plain
    assert gzip.decompress(zipped.content) == plain.content
    assert zipped["Content-Type"] == "application/vnd.mapbox-vector-tile"


@pytest.mark.parametrize(
    ("query", "expected_prices"),
    [
        ("price__gte=400000", [410000, 520000]),
        ("status=active", [250000, 410000]),
        ("status=active&price__gte=300000", [410000]),
        ("listed_at__gte=2026-01-01", [250000, 520000]),
        ("sauna=true", [250000, 520000]),
        ("price__in=250000,520000", [250000, 520000]),
        ("status__ne=sold&sauna=false", [410000]),
        ("price__lt=1", []),
    ],
)
def test_filters_choose_the_features_in_the_tile(listings, query: str, expected_prices: list[int]) -> None:
    _map, layer, _features, editor = listings
    response = client_for(editor).get(tile_url(layer, 14, query=query))
    if not expected_prices:
        assert response.status_code == 204
        return
    assert sorted(f["properties"]["price"] for f in decode(response)) == expected_prices


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("bedrooms__gte=3", "Unknown attribute 'bedrooms'"),
        ("price__near=3", "Unknown operator 'near'"),
        ("price__gte=cheap", "Expected integer"),
        ("status__gte=5&sauna__gt=true", "does not apply to a boolean"),
        ("listed_at__gte=yesterday", "Expected date"),
    ],
)
def test_a_bad_filter_is_a_400_naming_the_parameter(listings, query: str, fragment: str) -> None:
    _map, layer, _features, editor = listings
    response = client_for(editor).get(tile_url(layer, 14, query=query))
    assert response.status_code == 400
    assert fragment in response.json()["detail"]
    assert response.json()["detail"].split(":")[0] in query


def test_a_tile_requested_after_an_edit_shows_the_edit(listings) -> None:
    _map, layer, features, editor = listings
    client = client_for(editor)
    before = {f["id"]: f["properties"]["price"] for f in decode(client.get(tile_url(layer, 14)))}
    assert before[features[0].pk] == 250000
    patched = client.patch(
        f"/api/v1/layers/{layer.pk}/features/{features[0].pk}/",
        {"properties": {"price": 199000}},
        format="json",
        HTTP_IF_MATCH='"1"',
    )
    assert patched.status_code == 200
    after = {f["id"]: f["properties"]["price"] for f in decode(client.get(tile_url(layer, 14)))}
    assert after[features[0].pk] == 199000


def test_an_unchanged_tile_answers_304_and_an_edit_changes_its_etag(listings) -> None:
    _map, layer, features, editor = listings
    client = client_for(editor)
    first = client.get(tile_url(layer, 14))
    etag = first["ETag"]
    assert client.get(tile_url(layer, 14), HTTP_IF_NONE_MATCH=etag).status_code == 304
    filtered = client.get(tile_url(layer, 14, query="status=active"))
    assert filtered["ETag"] != etag
    client.delete(f"/api/v1/layers/{layer.pk}/features/{features[2].pk}/", HTTP_IF_MATCH='"1"')
    fresh = client.get(tile_url(layer, 14), HTTP_IF_NONE_MATCH=etag)
    assert fresh.status_code == 200 and fresh["ETag"] != etag
    assert features[2].pk not in {f["id"] for f in decode(fresh)}


def test_a_tile_304_costs_no_tile_query(listings, django_assert_max_num_queries) -> None:
    _map, layer, _features, editor = listings
    client = client_for(editor)
    etag = client.get(tile_url(layer, 14))["ETag"]
    with django_assert_max_num_queries(5):  # session, user, roles, grants, layer + its maps; never ST_AsMVT
        assert client.get(tile_url(layer, 14), HTTP_IF_NONE_MATCH=etag).status_code == 304


def test_empty_and_out_of_range_tiles(listings) -> None:
    _map, layer, _features, editor = listings
    client = client_for(editor)
    assert client.get(tile_url(layer, 14, lon=-70, lat=-30)).status_code == 204
    assert client.get(f"/tiles/layers/{layer.pk}/3/8/0.mvt").status_code == 400
    assert client.get(f"/tiles/layers/{layer.pk}/23/0/0.mvt").status_code == 400


def test_a_cached_tile_is_never_served_to_someone_without_access(listings) -> None:
    map, layer, _features, editor = listings
    assert client_for(editor).get(tile_url(layer, 14)).status_code == 200  # now cached
    outsider = UserFactory()
    assert client_for(outsider).get(tile_url(layer, 14)).status_code == 404
    assert Client().get(tile_url(layer, 14)).status_code == 404
    Map.objects.for_workspace(map.workspace).filter(pk=map.pk).update(visibility="private")
    viewer = MembershipFactory(workspace=map.workspace, role=Role.VIEWER).user
    assert client_for(viewer).get(tile_url(layer, 14)).status_code == 404


def test_public_map_tiles_are_public_and_private_ones_private(listings) -> None:
    map, layer, _features, editor = listings
    private = client_for(editor).get(tile_url(layer, 14))
    assert private["Cache-Control"].startswith("private")
    Map.objects.for_workspace(map.workspace).filter(pk=map.pk).update(visibility="public")
    anonymous = Client().get(tile_url(layer, 14, query=f"v={layer.data_version}"))
    assert anonymous.status_code == 200
    assert anonymous["Cache-Control"] == "public, max-age=86400"
    assert Client().get(tile_url(layer, 14))["Cache-Control"] == "public, max-age=0, must-revalidate"


def test_scripts_fetch_tiles_with_an_api_token(listings) -> None:
    from apps.accounts.services import api_token_create

    _map, layer, features, editor = listings
    _, key = api_token_create(user=editor, name="tiles")
    decoded = decode(Client().get(tile_url(layer, 14), HTTP_AUTHORIZATION=f"Token {key}"))
    assert len(decoded) == len(features)


def test_tilejson_points_at_versioned_filtered_tiles_and_lists_the_fields(listings) -> None:
    _map, layer, _features, editor = listings
    body = client_for(editor).get(f"/tiles/layers/{layer.pk}.json?status=active").json()
    layer.refresh_from_db()
    assert body["tilejson"] == "3.0.0"
    assert body["tiles"][0].endswith(f"/{{z}}/{{x}}/{{y}}.mvt?status=active&v={layer.data_version}")
    assert body["vector_layers"][0]["fields"] == {
        "price": "Number",
        "status": "String",
        "listed_at": "String",
        "sauna": "Boolean",
    }
    assert client_for(editor).get(f"/tiles/layers/{layer.pk}.json?floors=2").status_code == 400


def test_lines_are_simplified_at_low_zoom() -> None:
    layer = LayerFactory(geometry_type="line", is_global=True)
    member = MembershipFactory(workspace=layer.workspace).user
    # A 2,000-vertex zigzag about 30 m long: all of it inside one z18 tile.
    wiggly = LineString([(24.9401 + i * 2.5e-7, 60.1701 + (i % 2) * 2e-6) for i in range(2000)], srid=4326)
    FeatureFactory(layer=layer, geom=wiggly, properties={})
    client = client_for(member)

    def vertices(z: int) -> int:
        geometry = decode(client.get(tile_url(layer, z, lon=24.94035, lat=60.1701)))[0]["geometry"]
        return len(geometry["coordinates"])

    assert vertices(8) < 10
    assert vertices(18) > 1000


def test_an_oversized_tile_is_thinned_under_the_cap() -> None:
    layer = LayerFactory(geometry_type="point", is_global=True)
    member = MembershipFactory(workspace=layer.workspace).user
    with connection.cursor() as cursor:  # 60,000 points with bulky attributes in one z10 tile
        cursor.execute(
            """
            INSERT INTO layers_feature (created_at, updated_at, workspace_id, layer_id, geom, properties, version)
            SELECT now(), now(), %s, %s,
                   ST_SetSRID(ST_MakePoint(24.80 + random() * 0.3, 60.10 + random() * 0.12), 4326),
                   jsonb_build_object('description', repeat(md5(i::text), 4), 'n', i), 1
            FROM generate_series(1, 60000) AS i
            """,
            [layer.workspace_id, layer.pk],
        )
    response = client_for(member).get(tile_url(layer, 10))
    assert response.status_code == 200
    raw = response.content if "Content-Encoding" not in response else gzip.decompress(response.content)
    assert len(raw) <= MAX_TILE_BYTES
    assert 1000 < len(decode(response)) < 60000


@pytest.fixture
def dense_listings():
    """6,000 listings in two tight groups: east Helsinki (cheap) and west (dear)."""
    layer = LayerFactory(geometry_type="point", is_global=True)
    layer.attribute_schema = {"price": "integer", "status": "string"}
    layer.style_config = {"cluster_properties": ["price"], "cluster_max_zoom": 11}
    layer.save()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO layers_feature (created_at, updated_at, workspace_id, layer_id, geom, properties, version)
            SELECT now(), now(), %s, %s,
                   ST_SetSRID(ST_MakePoint(CASE WHEN i %% 2 = 0 THEN 25.05 ELSE 24.85 END + (i %% 97) * 1e-5,
                                           60.20 + (i %% 89) * 1e-5), 4326),
                   jsonb_build_object('price', CASE WHEN i %% 2 = 0 THEN 200000 ELSE 600000 END,
                                      'status', CASE WHEN i %% 3 = 0 THEN 'sold' ELSE 'active' END), 1
            FROM generate_series(1, 6000) AS i
            """,
            [layer.workspace_id, layer.pk],
        )
    Layer.objects.for_workspace(layer.workspace_id).filter(pk=layer.pk).update(feature_count=6000)
    layer.refresh_from_db()
    member = MembershipFactory(workspace=layer.workspace).user
    return layer, member


def test_large_point_layers_are_clustered_at_low_zoom_with_counts_and_averages(dense_listings) -> None:
    layer, member = dense_listings
    clusters = decode(client_for(member).get(tile_url(layer, 8)))
    assert sorted(c["properties"]["point_count"] for c in clusters) == [3000, 3000]
    assert sorted(c["properties"]["avg_price"] for c in clusters) == [200000, 600000]
    assert all(c["properties"]["cluster"] is True for c in clusters)


def test_clusters_respect_filters(dense_listings) -> None:
    layer, member = dense_listings
    clusters = decode(client_for(member).get(tile_url(layer, 8, query="status=sold&price__gte=500000")))
    assert [c["properties"]["point_count"] for c in clusters] == [1000]


def test_past_the_cluster_zoom_points_come_one_by_one(dense_listings) -> None:
    layer, member = dense_listings
    points = decode(client_for(member).get(tile_url(layer, 14, lon=25.0503, lat=60.2004)))
    assert len(points) == 3000
    assert {p["properties"]["price"] for p in points} == {200000}


@pytest.fixture
def grid_lines():
    """Transmission lines of 110, 220 and 400 kV around Helsinki, on a workspace map."""
    entry = MapLayerFactory(map__visibility="workspace", layer__geometry_type="line")
    layer = entry.layer
    layer.attribute_schema = {"voltage": "integer"}
    layer.save()
    for offset, kv in enumerate((110_000, 220_000, 400_000)):
        line = LineString([(24.5, 60.1 + offset * 0.05), (25.5, 60.1 + offset * 0.05)], srid=4326)
        FeatureFactory(layer=layer, geom=line, properties={"voltage": kv})
    return layer, MembershipFactory(workspace=layer.workspace, role=Role.EDITOR).user


def test_zoom_rules_thin_lines_at_low_zoom_and_a_style_change_refreshes_cached_tiles(grid_lines) -> None:
    layer, editor = grid_lines
    client = client_for(editor)
    assert len(decode(client.get(tile_url(layer, 5)))) == 3  # cached now
    rules = {"zoom_rules": [{"max_zoom": 6, "where": {"voltage__gte": "345000"}}]}
    response = client.patch(f"/api/v1/layers/{layer.pk}/", {"style_config": rules}, format="json")
    assert response.status_code == 200, response.json()
    low = decode(client.get(tile_url(layer, 5)))
    assert [f["properties"]["voltage"] for f in low] == [400_000]
    assert len(decode(client.get(tile_url(layer, 8)))) == 3


def test_a_zoom_rule_on_an_unknown_attribute_is_refused(grid_lines) -> None:
    layer, editor = grid_lines
    rules = {"zoom_rules": [{"max_zoom": 6, "where": {"kv__gte": "345000"}}]}
    response = client_for(editor).patch(f"/api/v1/layers/{layer.pk}/", {"style_config": rules}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("style_config.zoom_rules[0].where.kv__gte")
