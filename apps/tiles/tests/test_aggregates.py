"""Precomputed cluster aggregates: identical to on-the-fly clusters, and never stale."""

from __future__ import annotations

import pytest
from django.db import connection

from apps.jobs.models import Job
from apps.layers.models import Layer
from apps.tiles.aggregates import build_point_clusters, precomputed_version
from apps.tiles.mvt import CLUSTER_CELLS, TileRequest, render_tile
from apps.tiles.services import layer_tiling_execute
from apps.tiles.tests.test_tiles import decode, tile_url
from conftest import client_for
from tests.factories import LayerFactory, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def listings():
    """8,000 points spread over southern Finland with prices, as a tiling job would see them."""
    layer = LayerFactory(geometry_type="point", is_global=True)
    layer.attribute_schema = {"price": "integer", "status": "string"}
    layer.style_config = {"cluster_properties": ["price"], "cluster_max_zoom": 9}
    layer.save()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO layers_feature (created_at, updated_at, workspace_id, layer_id, geom, properties, version)
            SELECT now(), now(), %s, %s,
                   ST_SetSRID(ST_MakePoint(22 + (i * 7919 %% 1000) * 0.006, 60 + (i * 104729 %% 1000) * 0.002), 4326),
                   jsonb_build_object('price', 100000 + (i %% 50) * 1000, 'status', CASE WHEN i %% 4 = 0
                                      THEN 'sold' ELSE 'active' END), 1
            FROM generate_series(1, 8000) AS i
            """,
            [layer.workspace_id, layer.pk],
        )
    Layer.objects.for_workspace(layer.workspace_id).filter(pk=layer.pk).update(feature_count=8000)
    layer.refresh_from_db()
    return layer, MembershipFactory(workspace=layer.workspace, role="editor").user


@pytest.fixture
def around_the_origin():
    """4,000 priced points in ±3° around 0°, 0°: negative cell numbers on both axes."""
    layer = LayerFactory(geometry_type="point", is_global=True)
    layer.attribute_schema = {"price": "integer"}
    layer.style_config = {"cluster": True, "cluster_properties": ["price"], "cluster_max_zoom": 9}
    layer.save()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO layers_feature (created_at, updated_at, workspace_id, layer_id, geom, properties, version)
            SELECT now(), now(), %s, %s,
                   ST_SetSRID(ST_MakePoint(-3 + (i * 7919 %% 1000) * 0.006, -3 + (i * 104729 %% 1000) * 0.006), 4326),
                   jsonb_build_object('price', 1000 + (i %% 7) * 10), 1
            FROM generate_series(1, 4000) AS i
            """,
            [layer.workspace_id, layer.pk],
        )
    Layer.objects.for_workspace(layer.workspace_id).filter(pk=layer.pk).update(feature_count=4000)
    layer.refresh_from_db()
    return layer


def _features(tile: bytes) -> list[tuple[int, int, float]]:
    import mapbox_vector_tile

    decoded = mapbox_vector_tile.decode(tile)["features"]["features"] if tile else []
    return sorted((f["id"], f["properties"]["point_count"], f["properties"].get("avg_price")) for f in decoded)


@pytest.mark.parametrize(("z", "x", "y"), [(2, 2, 1), (5, 18, 9), (7, 74, 37), (9, 290, 145), (9, 291, 146)])
def test_precomputed_tiles_equal_on_the_fly_tiles(listings, z: int, x: int, y: int) -> None:
    layer, _ = listings
    on_the_fly, _ = render_tile(TileRequest(layer, z, x, y))
    build_point_clusters(layer, max_zoom=9, cells_per_tile=CLUSTER_CELLS, attributes=["price"])
    assert precomputed_version(layer) is not None
    precomputed, _ = render_tile(TileRequest(layer, z, x, y))
    assert _features(precomputed) == _features(on_the_fly)


# The coarser zooms are summed from the finer cells (cell >> 1): the floor must hold below zero too.
@pytest.mark.parametrize(("z", "x", "y"), [(3, 3, 3), (3, 4, 4), (6, 31, 31), (6, 32, 32), (9, 255, 256)])
def test_precomputed_tiles_equal_on_the_fly_tiles_across_the_origin(around_the_origin, z: int, x: int, y: int) -> None:
    layer = around_the_origin
    on_the_fly, _ = render_tile(TileRequest(layer, z, x, y))
    build_point_clusters(layer, max_zoom=9, cells_per_tile=CLUSTER_CELLS, attributes=["price"])
    precomputed, _ = render_tile(TileRequest(layer, z, x, y))
    assert _features(on_the_fly)
    assert _features(precomputed) == _features(on_the_fly)


def test_the_compared_tiles_hold_clusters(listings) -> None:
    layer, _ = listings
    counts = [
        sum(c for _, c, _ in _features(render_tile(TileRequest(layer, *zxy))[0]))
        for zxy in ((2, 2, 1), (5, 18, 9), (9, 290, 145))
    ]
    assert counts[0] == 8000 and all(counts)


def test_after_an_edit_tiles_ignore_the_stale_aggregates_until_the_job_runs_again(listings) -> None:
    layer, editor = listings
    build_point_clusters(layer, max_zoom=9, cells_per_tile=CLUSTER_CELLS, attributes=["price"])
    client = client_for(editor)
    before = sum(f["properties"]["point_count"] for f in decode(client.get(tile_url(layer, 3, lon=24, lat=60.9))))
    point = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [24.0, 60.9]}, "properties": {"price": 1}}
    assert client.post(f"/api/v1/layers/{layer.pk}/features/", point, format="json").status_code == 201
    layer.refresh_from_db()
    assert precomputed_version(layer) is None
    after = sum(f["properties"]["point_count"] for f in decode(client.get(tile_url(layer, 3, lon=24, lat=60.9))))
    assert after == before + 1


def test_the_tiling_job_builds_the_aggregates_and_reports_them(listings) -> None:
    layer, _ = listings
    job = Job.objects.for_workspace(layer.workspace_id).create(
        workspace_id=layer.workspace_id, kind="tiling", layer=layer
    )
    layer_tiling_execute(job=job)
    job.refresh_from_db()
    assert job.status == "succeeded" and job.progress == 100
    assert job.result["cells"] > 0 and job.result["data_version"] == layer.data_version
    assert precomputed_version(layer).max_zoom == 9


def test_filtered_low_zoom_tiles_are_computed_from_the_points(listings) -> None:
    layer, editor = listings
    build_point_clusters(layer, max_zoom=9, cells_per_tile=CLUSTER_CELLS, attributes=["price"])
    sold = decode(client_for(editor).get(tile_url(layer, 2, lon=24, lat=60.5, query="status=sold")))
    assert sum(f["properties"]["point_count"] for f in sold) == 2000
