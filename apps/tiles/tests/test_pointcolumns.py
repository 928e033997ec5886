"""Point columns: cluster tiles from the memory-mapped snapshot equal the ones computed from the features."""

from __future__ import annotations

import json
from unittest import mock

import numpy as np
import pytest
from django.db import connection
from django.db.models import F

from apps.jobs.models import Job
from apps.layers.models import Layer
from apps.tiles import pointcolumns
from apps.tiles.mvt import CLUSTER_CELLS, render_tile
from apps.tiles.pointcolumns import clusters_from_columns, columns_root, export_point_columns, open_point_columns
from apps.tiles.pointtable import build_point_table, current_point_table, key_ranges
from apps.tiles.services import layer_tiling_execute
from apps.tiles.tests.test_pointtable import FILTERS, TILES, _decoded, _make_listings, _request
from conftest import client_for
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

# String ranges compare under the database's collation: the columns leave them to the point table.
STRING_RANGES = {"status__gt=m", "status__lte=pending"}
# Where NULLs (NaN, code -1) and values missing from the dictionary must match nothing, as in SQL.
NULL_SENSITIVE = ["price__ne=2000", "status__in=active,nowhere", "status__ne=nowhere", "listed_at__ne=2026-01-05"]


@pytest.fixture(autouse=True)
def small_point_tables(settings, media_root):
    settings.TILES_POINT_TABLE_MIN_FEATURES = 1000


@pytest.fixture
def listings() -> Layer:
    return _make_listings()


def _from_columns(layer: Layer, zxy: tuple[int, int, int], query: str) -> bytes | None:
    request = _request(layer, zxy, query)
    ranges = key_ranges(*zxy, CLUSTER_CELLS)
    state = current_point_table(layer)
    assert ranges is not None and state is not None
    return clusters_from_columns(request, state, ranges, ["price", "area"], margin=1 / CLUSTER_CELLS)


@pytest.mark.parametrize("long_range_rows", [1, 10**9], ids=["ranges-in-place", "ranges-gathered"])
@pytest.mark.parametrize("query", [q for q in FILTERS if q not in STRING_RANGES] + NULL_SENSITIVE)
def test_column_tiles_equal_tiles_computed_from_the_features(
    listings, query: str, long_range_rows, monkeypatch
) -> None:
    monkeypatch.setattr(pointcolumns, "LONG_RANGE_ROWS", long_range_rows)
    fallback = {zxy: _decoded(render_tile(_request(listings, zxy, query))[0]) for zxy in TILES}
    build_point_table(listings)
    export_point_columns(listings)
    for zxy in TILES:
        from_columns = _from_columns(listings, zxy, query)
        assert from_columns is not None, zxy
        assert _decoded(from_columns) == fallback[zxy], (zxy, query)
        assert _decoded(render_tile(_request(listings, zxy, query))[0]) == fallback[zxy]


def test_the_compared_tiles_carry_averages_of_decimal_attributes(listings) -> None:
    """`area` has three decimals: summed as integers of thousandths, averaged as the SQL path rounds them."""
    build_point_table(listings)
    meta = export_point_columns(listings)
    assert meta["sum_decimals"] == {meta["columns"]["price"]["slot"]: 0, meta["columns"]["area"]["slot"]: 3}
    decoded = _decoded(_from_columns(listings, (2, 2, 2), "price__gte=2000"))
    assert decoded and all(dict(props).keys() >= {"avg_area", "avg_price", "point_count"} for _, _, props in decoded)


@pytest.mark.parametrize("query", [*sorted(STRING_RANGES), "price__isnull=true"])
def test_filters_the_columns_cannot_express_go_to_the_point_table(listings, query: str) -> None:
    expected = [_decoded(render_tile(_request(listings, zxy, query))[0]) for zxy in TILES[:6]]
    build_point_table(listings)
    export_point_columns(listings)
    for zxy, fallback in zip(TILES[:6], expected, strict=True):
        assert _from_columns(listings, zxy, query) is None
        assert _decoded(render_tile(_request(listings, zxy, query))[0]) == fallback


def test_an_attribute_with_too_many_decimals_to_sum_exactly_is_left_to_the_point_table(listings) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE layers_feature SET properties = properties || '{\"area\": 50.1234567}' "
            "WHERE id = (SELECT min(id) FROM layers_feature WHERE layer_id = %s)",
            [listings.pk],
        )
    expected = _decoded(render_tile(_request(listings, (0, 0, 0), "price__gte=2000"))[0])
    build_point_table(listings)
    meta = export_point_columns(listings)
    assert meta["columns"]["area"]["slot"] not in meta["sum_decimals"]
    assert _from_columns(listings, (0, 0, 0), "price__gte=2000") is None
    assert _decoded(render_tile(_request(listings, (0, 0, 0), "price__gte=2000"))[0]) == expected


def test_the_snapshot_holds_every_point_in_key_order_with_nulls_marked(listings) -> None:
    state = build_point_table(listings)
    export_point_columns(listings)
    snapshot = open_point_columns(listings.pk, state.points_data_version)
    assert snapshot is not None and snapshot.rows == 6000
    keys = np.asarray(snapshot.arrays["key"])
    assert (np.diff(keys) >= 0).all()
    price = snapshot.arrays[state.points_columns["price"]["slot"]]
    assert int(np.isnan(price).sum()) == len([i for i in range(1, 6001) if i % 17 == 0])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT key, feature_id FROM tiles_clusterpoint WHERE layer_id = %s ORDER BY key, feature_id", [listings.pk]
        )
        stored = cursor.fetchall()
    exported = sorted(zip(keys.tolist(), np.asarray(snapshot.arrays["id"]).tolist(), strict=True))
    assert exported == stored
    assert set(np.unique(snapshot.arrays[state.points_columns["status"]["slot"]]).tolist()) == {0, 1, 2}


def test_after_an_edit_the_old_snapshot_is_never_used_and_a_new_export_replaces_it(listings) -> None:
    editor = MembershipFactory(workspace=listings.workspace, role="editor").user
    state = build_point_table(listings)
    export_point_columns(listings)
    old = columns_root() / str(listings.pk) / f"v{state.points_data_version}"
    point = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [0.5, 0.5]},
        "properties": {"price": 99000},
    }
    client = client_for(editor)
    assert client.post(f"/api/v1/layers/{listings.pk}/features/", point, format="json").status_code == 201
    listings.refresh_from_db()
    assert current_point_table(listings) is None
    state = build_point_table(listings)
    with mock.patch.object(pointcolumns, "_grouped", wraps=pointcolumns._grouped) as grouped:
        assert _from_columns(listings, (3, 4, 3), "price__gte=20000") is None  # no snapshot of this version yet
        assert not grouped.called
    export_point_columns(listings)
    assert not old.exists() and (columns_root() / str(listings.pk) / f"v{state.points_data_version}").is_dir()
    fallback = _decoded(render_tile(_request(listings, (3, 4, 3), "price__gte=20000"))[0])
    assert _decoded(_from_columns(listings, (3, 4, 3), "price__gte=20000")) == fallback
    assert any(dict(props)["avg_price"] for _, _, props in fallback)


def test_an_export_clears_what_a_killed_export_left(listings) -> None:
    state = build_point_table(listings)
    abandoned = columns_root() / str(listings.pk) / ".building-0123"
    abandoned.mkdir(parents=True)
    (abandoned / "key.bin").write_bytes(b"half a column")
    export_point_columns(listings)
    assert sorted(p.name for p in (columns_root() / str(listings.pk)).iterdir()) == [f"v{state.points_data_version}"]


def test_a_failed_export_leaves_no_snapshot_behind(listings) -> None:
    state = build_point_table(listings)
    failing = mock.patch.object(pointcolumns, "_dictionaries", side_effect=RuntimeError("killed"))
    with failing, pytest.raises(RuntimeError):
        export_point_columns(listings)
    layer_dir = columns_root() / str(listings.pk)
    assert list(layer_dir.iterdir()) == []
    assert open_point_columns(listings.pk, state.points_data_version) is None


def test_the_tiling_job_exports_the_columns_and_deleting_the_layer_removes_them(
    listings, django_capture_on_commit_callbacks
) -> None:
    from apps.layers.selectors import layer_access
    from apps.layers.services import layer_delete
    from apps.maps.selectors import actor_for

    job = Job.objects.for_workspace(listings.workspace_id).create(
        workspace_id=listings.workspace_id, kind="tiling", layer=listings
    )
    layer_tiling_execute(job=job)
    job.refresh_from_db()
    assert job.status == "succeeded" and job.result["point_columns"] == 6000
    assert (columns_root() / str(listings.pk)).is_dir()
    owner = MembershipFactory(workspace=listings.workspace, role="owner").user
    with django_capture_on_commit_callbacks(execute=True):
        layer_delete(access=layer_access(actor_for(owner), listings.pk), user=owner)
    assert not (columns_root() / str(listings.pk)).exists()


def test_an_export_sweeps_snapshots_of_layers_deleted_behind_the_services(listings) -> None:
    other = _make_listings(2000)
    build_point_table(other)
    export_point_columns(other)
    Layer.objects.for_workspace(other.workspace_id).filter(pk=other.pk).delete()  # e.g. the admin's bulk delete
    build_point_table(listings)
    export_point_columns(listings)
    assert not (columns_root() / str(other.pk)).exists()
    assert (columns_root() / str(listings.pk)).is_dir()


@pytest.mark.parametrize("query", ["status__ne=sold", "status__ne=nowhere", "status__in=sold,nowhere"])
def test_points_without_a_string_value_never_match_a_code_condition(listings, query: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE layers_feature SET properties = properties - 'status' WHERE layer_id = %s AND id %% 19 = 0",
            [listings.pk],
        )
    fallback = {zxy: _decoded(render_tile(_request(listings, zxy, query))[0]) for zxy in TILES}
    build_point_table(listings)
    export_point_columns(listings)
    for zxy in TILES:
        assert _decoded(_from_columns(listings, zxy, query)) == fallback[zxy], zxy


def test_the_columns_go_where_the_deployment_points_them(listings, settings, tmp_path) -> None:
    settings.TILES_POINT_COLUMNS_ROOT = str(tmp_path / "shared-columns")
    state = build_point_table(listings)
    export_point_columns(listings)
    assert (tmp_path / "shared-columns" / str(listings.pk) / f"v{state.points_data_version}" / "meta.json").is_file()
    assert _from_columns(listings, (0, 0, 0), "price__gte=2000") is not None


# --- the viewport API's clusters ---------------------------------------------------------------------------

VIEWS = [
    {"west": -180, "south": -90, "east": 180, "north": 90, "zoom": 0},
    {"west": -2.5, "south": -2.5, "east": 2.5, "north": 2.5, "zoom": 6},
    {"west": -1, "south": -1, "east": 0.5, "north": 0.25, "zoom": 9},
    {"west": 170, "south": -30, "east": -170, "north": 10, "zoom": 2},  # across the antimeridian
    {"west": 100, "south": -80, "east": 179.99, "north": -10, "zoom": 3},
]
VIEW_FILTERS = ["", "price__gte=20000", "status=active", "area__lt=51.5&status__ne=sold", "listed_at__gte=2026-03-01"]


def _viewport(layer: Layer, view: dict, query: str, *, columns: bool) -> list[dict]:
    from apps.layers.aggregates import Viewport, viewport_clusters
    from apps.layers.filters import parse_filters

    params = dict(pair.split("=") for pair in query.split("&")) if query else {}
    conditions = parse_filters(params, layer.attribute_schema)
    viewport = Viewport.parse({k: str(v) for k, v in view.items()})
    if columns:
        return viewport_clusters(layer, viewport, conditions)
    with mock.patch("apps.layers.aggregates.viewport_clusters_from_columns", return_value=None):
        return viewport_clusters(layer, viewport, conditions)


def _comparable(clusters: list[dict]) -> list[tuple]:
    return sorted((c["count"], json.dumps(c["stats"], sort_keys=True), *c["centroid"]) for c in clusters)


@pytest.mark.parametrize("query", VIEW_FILTERS)
@pytest.mark.parametrize("view", VIEWS, ids=lambda v: f"{v['west']},{v['south']},{v['east']},{v['north']}@{v['zoom']}")
def test_viewport_clusters_from_the_columns_equal_the_ones_from_the_features(listings, view, query) -> None:
    expected = _viewport(listings, view, query, columns=False)
    build_point_table(listings)
    export_point_columns(listings)
    with mock.patch.object(pointcolumns, "_grouped", wraps=pointcolumns._grouped) as grouped:
        found = _viewport(listings, view, query, columns=True)
    assert grouped.called and (expected or query)  # every view holds points; a filter may leave none
    assert [c["count"] for c in found] == sorted((c["count"] for c in found), reverse=True)
    for got, want in zip(_comparable(found), _comparable(expected), strict=True):
        assert got[:2] == want[:2]  # count and every attribute's min / avg / max
        # Centroids: both are means rounded to 7 decimals (1 cm); summed in another order, a mean that
        # falls on a rounding tie may land on the neighbouring digit.
        assert got[2:] == pytest.approx(want[2:], abs=1.5e-7)


def test_the_viewport_falls_back_to_the_features_when_the_columns_cannot_answer(listings) -> None:
    build_point_table(listings)
    export_point_columns(listings)
    view = VIEWS[0]
    with mock.patch.object(pointcolumns, "_grouped", wraps=pointcolumns._grouped) as grouped:
        ranged = _viewport(listings, view, "status__gt=m", columns=True)  # collation-dependent: SQL only
        assert not grouped.called
    assert _comparable(ranged) == _comparable(_viewport(listings, view, "status__gt=m", columns=False))
    Layer.objects.for_workspace(listings.workspace_id).filter(pk=listings.pk).update(data_version=F("data_version") + 1)
    listings.refresh_from_db()
    with mock.patch.object(pointcolumns, "_grouped", wraps=pointcolumns._grouped) as grouped:
        _viewport(listings, view, "", columns=True)  # the snapshot is of an older version
        assert not grouped.called


def test_a_snapshot_of_another_format_is_ignored_and_rewritten(listings) -> None:
    state = build_point_table(listings)
    export_point_columns(listings)
    meta_path = columns_root() / str(listings.pk) / f"v{state.points_data_version}" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps(meta | {"format": pointcolumns.FORMAT - 1}))
    pointcolumns._opened.clear()
    assert open_point_columns(listings.pk, state.points_data_version) is None
    assert export_point_columns(listings)["format"] == pointcolumns.FORMAT
    assert open_point_columns(listings.pk, state.points_data_version) is not None


def test_a_member_gets_the_column_tile_over_http_and_an_edit_is_shown_at_once(listings) -> None:
    """End to end through the tile view (and its cache): the columns answer, and after an edit the old
    snapshot is never used, so the new point is counted before any rebuild."""
    from apps.tiles.tests.test_tiles import decode, tile_url

    editor = MembershipFactory(workspace=listings.workspace, role="editor").user
    client = client_for(editor)
    url = tile_url(listings, 2, lon=0.5, lat=0.5, query="price__gte=20000")
    expected = sum(f["properties"]["point_count"] for f in decode(client.get(url)))
    build_point_table(listings)
    export_point_columns(listings)
    listings.refresh_from_db()
    with mock.patch.object(pointcolumns, "_grouped", wraps=pointcolumns._grouped) as grouped:
        other_zoom = tile_url(listings, 3, lon=0.5, lat=0.5, query="price__gte=20000")
        from_columns = sum(f["properties"]["point_count"] for f in decode(client.get(other_zoom)))
        assert grouped.called and from_columns > 0
    point = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [0.5, 0.5]},
        "properties": {"price": 99000},
    }
    assert client.post(f"/api/v1/layers/{listings.pk}/features/", point, format="json").status_code == 201
    with mock.patch.object(pointcolumns, "_grouped", wraps=pointcolumns._grouped) as grouped:
        assert sum(f["properties"]["point_count"] for f in decode(client.get(url))) == expected + 1
        assert not grouped.called
