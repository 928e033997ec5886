"""The point table: filtered cluster tiles read from it equal the ones computed from the features."""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Iterator

import mapbox_vector_tile
import pytest
from django.db import OperationalError, connection

from apps.jobs.models import Job
from apps.layers.filters import parse_filters
from apps.layers.models import Layer
from apps.tiles.models import ClusterPoint, ClusterPointCode, TilingState
from apps.tiles.mvt import TileRequest, _point_table_clusters, render_tile
from apps.tiles.pointtable import build_point_table, current_point_table
from apps.tiles.services import layer_tiling_execute
from apps.tiles.tests.test_tiles import decode, tile_url
from conftest import client_for
from tests.factories import LayerFactory, MembershipFactory

pytestmark = pytest.mark.django_db

SCHEMA = {"price": "integer", "area": "number", "status": "string", "listed_at": "date"}


@pytest.fixture(autouse=True)
def small_point_tables(settings, media_root):
    settings.TILES_POINT_TABLE_MIN_FEATURES = 1000


def _make_listings(count: int = 6000) -> Layer:
    """Points over the whole world (both sides of the antimeridian and of 0°, 0°), some prices missing."""
    layer = LayerFactory(geometry_type="point", is_global=True)
    layer.attribute_schema = SCHEMA
    layer.style_config = {"cluster": True, "cluster_properties": ["price", "area"], "cluster_max_zoom": 9}
    layer.save()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO layers_feature (created_at, updated_at, workspace_id, layer_id, geom, properties, version)
            SELECT now(), now(), %s, %s,
                   ST_SetSRID(CASE WHEN i %% 3 = 0
                       THEN ST_MakePoint(-179.99 + (i * 7919 %% 35998) * 0.01, -70 + (i * 104729 %% 14000) * 0.01)
                       WHEN i %% 3 = 1 THEN ST_MakePoint(-2 + (i * 7919 %% 400) * 0.01, -2 + (i * 104729 %% 400) * 0.01)
                       ELSE ST_MakePoint(CASE WHEN i %% 2 = 0 THEN 179.3 ELSE -179.95 END + (i * 31 %% 60) * 0.01,
                                         -20 + (i * 104729 %% 2000) * 0.01) END, 4326),
                   jsonb_build_object(
                       'price', 1000 + (i %% 50) * 1000,
                       'area', 50.5 + (i %% 13) * 0.25 + (i %% 7) * 0.001,
                       'status', (ARRAY['active', 'sold', 'pending'])[i %% 3 + 1],
                       'listed_at', '2026-01-01'::date + (i %% 300)) - CASE WHEN i %% 17 = 0 THEN 'price' ELSE '' END,
                   1
            FROM generate_series(1, %s) AS i
            """,
            [layer.workspace_id, layer.pk, count],
        )
    Layer.objects.for_workspace(layer.workspace_id).filter(pk=layer.pk).update(feature_count=count)
    layer.refresh_from_db()
    return layer


@pytest.fixture
def listings() -> Layer:
    return _make_listings()


def _decoded(tile: bytes) -> list[tuple]:
    features = mapbox_vector_tile.decode(tile)["features"]["features"] if tile else []
    return sorted((f["id"], str(f["geometry"]), sorted(f["properties"].items())) for f in features)


def _request(layer: Layer, zxy: tuple[int, int, int], query: str) -> TileRequest:
    params = dict(pair.split("=") for pair in query.split("&")) if query else {}
    return TileRequest(layer, *zxy, parse_filters(params, layer.attribute_schema))


TILES = [
    (0, 0, 0),
    (1, 0, 1),
    (1, 1, 1),
    (2, 0, 2),
    (2, 3, 2),
    (4, 0, 8),
    (4, 15, 8),
    (6, 31, 31),
    (6, 32, 32),
    (9, 0, 270),
    (9, 511, 270),
    (9, 255, 256),
]
FILTERS = [
    "",
    "price__gte=20000",
    "price__gte=20000&status=active",
    "status__in=active,pending",
    "status__ne=sold",
    "status=nowhere",
    "area__lt=51.5",
    "price__in=1000,2000,30000",
    "price__lt=5000&area__gte=51",
    "listed_at__gte=2026-03-01",
    "listed_at__lt=2026-02-01&status=active",
    "listed_at=2026-05-05",
    "listed_at__in=2026-01-10,2026-02-20&price__gte=3000",
    "status__gt=m",
    "status__lte=pending",
]


@pytest.mark.parametrize("query", FILTERS)
def test_point_table_tiles_equal_tiles_computed_from_the_features(listings, query: str) -> None:
    fallback = {zxy: _decoded(render_tile(_request(listings, zxy, query))[0]) for zxy in TILES}
    build_point_table(listings)
    for zxy in TILES:
        from_table = _point_table_clusters(_request(listings, zxy, query))
        assert from_table is not None, zxy
        assert _decoded(from_table) == fallback[zxy], (zxy, query)
        assert _decoded(render_tile(_request(listings, zxy, query))[0]) == fallback[zxy]


def test_the_compared_tiles_hold_clusters_everywhere(listings) -> None:
    build_point_table(listings)
    for zxy in TILES:
        assert _decoded(render_tile(_request(listings, zxy, "price__gte=2000"))[0]), zxy
    world = mapbox_vector_tile.decode(render_tile(_request(listings, (0, 0, 0), ""))[0])["features"]["features"]
    assert sum(f["properties"]["point_count"] for f in world) == 6000


@pytest.mark.parametrize("query", ["price__isnull=true", "listed_at__isnull=false", "status__isnull=true"])
def test_a_filter_the_point_table_cannot_express_falls_back_to_the_features(listings, query: str) -> None:
    expected = [_decoded(render_tile(_request(listings, zxy, query))[0]) for zxy in TILES[:6]]
    build_point_table(listings)
    for zxy, fallback in zip(TILES[:6], expected, strict=True):
        assert _point_table_clusters(_request(listings, zxy, query)) is None
        assert _decoded(render_tile(_request(listings, zxy, query))[0]) == fallback


def test_the_build_stores_every_point_with_typed_slots_and_codes(listings) -> None:
    state = build_point_table(listings)
    assert state.points_rows == 6000 and state.points_data_version == listings.data_version
    assert state.points_columns["price"]["kind"] == "number" and state.points_columns["price"]["integral"]
    assert state.points_columns["area"]["integral"] is False
    assert state.points_columns["status"]["kind"] == "code"
    assert state.points_columns["listed_at"]["kind"] == "date"
    assert ClusterPoint.objects.filter(layer_id=listings.pk).count() == 6000
    codes = ClusterPointCode.objects.filter(layer_id=listings.pk).values_list("value", flat=True)
    assert sorted(codes) == ["active", "pending", "sold"]


def test_dates_that_are_not_all_canonical_iso_dates_are_left_to_the_features(listings) -> None:
    """Text order is date order only for YYYY-MM-DD: one 'soon' among them and the slot would lie."""
    with connection.cursor() as cursor:
        cursor.execute(
            'UPDATE layers_feature SET properties = properties || \'{"listed_at": "soon"}\' '
            "WHERE id = (SELECT min(id) FROM layers_feature WHERE layer_id = %s)",
            [listings.pk],
        )
    query = "listed_at__gte=2026-03-01"
    expected = [_decoded(render_tile(_request(listings, zxy, query))[0]) for zxy in TILES[:6]]
    state = build_point_table(listings)
    assert "listed_at" not in state.points_columns
    for zxy, fallback in zip(TILES[:6], expected, strict=True):
        assert _point_table_clusters(_request(listings, zxy, query)) is None
        assert _decoded(render_tile(_request(listings, zxy, query))[0]) == fallback


def test_a_rebuild_replaces_the_rows_instead_of_adding_to_them(listings) -> None:
    build_point_table(listings)
    build_point_table(listings)
    assert ClusterPoint.objects.filter(layer_id=listings.pk).count() == 6000
    assert ClusterPointCode.objects.filter(layer_id=listings.pk).count() == 3


def test_after_an_edit_filtered_tiles_never_show_the_old_points_until_rebuilt(listings) -> None:
    editor = MembershipFactory(workspace=listings.workspace, role="editor").user
    build_point_table(listings)
    client = client_for(editor)
    url = tile_url(listings, 3, lon=0.5, lat=0.5, query="price__gte=20000")
    before = sum(f["properties"]["point_count"] for f in decode(client.get(url)))
    point = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [0.5, 0.5]},
        "properties": {"price": 99000},
    }
    assert client.post(f"/api/v1/layers/{listings.pk}/features/", point, format="json").status_code == 201
    listings.refresh_from_db()
    assert current_point_table(listings) is None
    assert sum(f["properties"]["point_count"] for f in decode(client.get(url))) == before + 1
    build_point_table(listings)
    assert current_point_table(listings) is not None
    assert sum(f["properties"]["point_count"] for f in decode(client.get(url))) == before + 1


def test_the_tiling_job_builds_the_point_table_and_reports_it(listings) -> None:
    job = Job.objects.for_workspace(listings.workspace_id).create(
        workspace_id=listings.workspace_id, kind="tiling", layer=listings
    )
    layer_tiling_execute(job=job)
    job.refresh_from_db()
    assert job.status == "succeeded" and job.result["points"] == 6000 and job.result["points_build_s"] >= 0
    assert current_point_table(listings).points_rows == 6000


def test_small_layers_get_no_point_table(listings, settings) -> None:
    settings.TILES_POINT_TABLE_MIN_FEATURES = 50_000
    job = Job.objects.for_workspace(listings.workspace_id).create(
        workspace_id=listings.workspace_id, kind="tiling", layer=listings
    )
    layer_tiling_execute(job=job)
    assert current_point_table(listings) is None and not ClusterPoint.objects.filter(layer_id=listings.pk).exists()


def test_point_tables_of_other_workspaces_never_reach_a_tile(listings) -> None:
    other = _make_listings(2000)
    build_point_table(listings)
    build_point_table(other)
    assert other.workspace_id != listings.workspace_id
    world = mapbox_vector_tile.decode(render_tile(_request(listings, (0, 0, 0), "price__gte=0"))[0])
    expected = 6000 - len([i for i in range(1, 6001) if i % 17 == 0])
    assert sum(f["properties"]["point_count"] for f in world["features"]["features"]) == expected
    assert ClusterPoint.objects.filter(layer_id=other.pk, workspace_id=other.workspace_id).count() == 2000


def test_deleting_the_layer_deletes_its_point_table(listings) -> None:
    build_point_table(listings)
    Layer.objects.for_workspace(listings.workspace_id).filter(pk=listings.pk).delete()
    assert not ClusterPoint.objects.filter(layer_id=listings.pk).exists()
    assert not ClusterPointCode.objects.filter(layer_id=listings.pk).exists()
    assert not TilingState.objects.unscoped().filter(layer_id=listings.pk).exists()


def test_deleting_the_workspace_deletes_its_point_table(listings) -> None:
    from apps.workspaces.models import Workspace

    other = _make_listings(2000)
    build_point_table(listings)
    build_point_table(other)
    Workspace.objects.filter(pk=listings.workspace_id).delete()
    assert not ClusterPoint.objects.filter(workspace_id=listings.workspace_id).exists()
    assert not ClusterPointCode.objects.filter(workspace_id=listings.workspace_id).exists()
    assert ClusterPoint.objects.filter(layer_id=other.pk).count() == 2000


def _build_clusters(layer: Layer) -> int:
    from apps.tiles.aggregates import build_point_clusters

    return build_point_clusters(layer, max_zoom=9, cells_per_tile=16, attributes=["price"])


def _current_clusters(layer: Layer) -> object | None:
    from apps.tiles.aggregates import precomputed_version

    return precomputed_version(layer)


@contextlib.contextmanager
def _build_paused_after(module: str, step: str, build, layer: Layer, monkeypatch) -> Iterator[list]:
    """Run `build(layer)` in a thread of its own (its own connection and transaction), paused right after
    `module.step` until the block ends; yields the errors the build raised (checked after the block)."""
    target = importlib.import_module(module)
    reached, release, errors = threading.Event(), threading.Event(), []
    real_step = getattr(target, step)

    def step_then_wait(*args, **kwargs):
        result = real_step(*args, **kwargs)
        reached.set()
        release.wait(30)
        return result

    def run_build() -> None:
        try:
            build(layer)
        except Exception as error:  # reported to the test through `errors`
            errors.append(error)
        finally:
            connection.close()

    monkeypatch.setattr(target, step, step_then_wait)
    builder = threading.Thread(target=run_build)
    builder.start()
    try:
        assert reached.wait(30)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")
        yield errors
    finally:
        release.set()
        builder.join(30)
        monkeypatch.setattr(target, step, real_step)
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")


BUILDS = [
    ("apps.tiles.pointtable", "_insert_points", build_point_table, current_point_table),
    ("apps.tiles.aggregates", "_create_build_table", _build_clusters, _current_clusters),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("module", "step", "build", "current"), BUILDS, ids=["point-table", "cluster-cells"])
def test_an_edit_commits_while_a_build_runs_and_that_build_is_never_used(
    monkeypatch, module: str, step: str, build, current
) -> None:
    """A build does not hold the layer's row: the edit would fail on its 2 s lock timeout if it had to
    wait. The build, labelled with the version before the edit, is then never read."""
    layer = _make_listings(2000)
    editor = MembershipFactory(workspace=layer.workspace, role="editor").user
    with _build_paused_after(module, step, build, layer, monkeypatch) as errors:
        point = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [0.5, 0.5]}, "properties": {}}
        response = client_for(editor).post(f"/api/v1/layers/{layer.pk}/features/", point, format="json")
        assert response.status_code == 201, response.content
    assert not errors
    layer.refresh_from_db()
    assert current(layer) is None  # built for the version before the edit
    build(layer)
    assert current(layer) is not None


@pytest.mark.django_db(transaction=True)
def test_a_layer_is_not_deleted_under_its_point_table_build_and_leaves_no_rows(monkeypatch) -> None:
    """The point rows have no database constraint: the build's key-share lock on the layer makes the
    delete wait (here: fail on its lock timeout) until the build committed, then Django's cascade removes them."""
    layer = _make_listings(2000)
    layers = Layer.objects.for_workspace(layer.workspace_id).filter(pk=layer.pk)
    with (
        _build_paused_after("apps.tiles.pointtable", "_insert_points", build_point_table, layer, monkeypatch) as errors,
        pytest.raises(OperationalError, match="lock timeout"),
    ):
        layers.delete()
    assert not errors and ClusterPoint.objects.filter(layer_id=layer.pk).count() == 2000
    layers.delete()
    assert not ClusterPoint.objects.filter(layer_id=layer.pk).exists()
