"""Precomputed point clusters per zoom: built by the tiling job, read by low-zoom tiles.

The grid is the one `mvt.CLUSTER_SQL` uses on the fly (CLUSTER_CELLS cells per
tile side, aligned with tile edges, centroid = mean of the points, id = the
smallest feature id), so a precomputed tile and an on-the-fly tile are the same.
Rows carry the layer's data_version; a tile uses them only when that version is
the layer's current one, so an edit never shows a stale cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.layers.models import Layer
from apps.tiles.models import TilingState

WEB_MERCATOR_SPAN = 2 * 20037508.342789244


def _cell_size(z: int, cells_per_tile: int) -> float:
    return WEB_MERCATOR_SPAN / (2**z) / cells_per_tile


# One scan of the layer's points (via the (layer_id, id) btree) for the finest zoom; the
# GROUP BY is the on-the-fly cluster grid. Names of averaged attributes are bound parameters.
_FINEST_SQL = """
INSERT INTO {build} (z, cx, cy, n, sx, sy, min_id{columns})
SELECT %(z)s, floor(ST_X(f.geom_3857) / %(cell)s)::bigint, floor(ST_Y(f.geom_3857) / %(cell)s)::bigint,
       count(*), sum(ST_X(f.geom_3857)), sum(ST_Y(f.geom_3857)), min(f.id){aggregates}
FROM layers_feature f
WHERE f.layer_id = %(layer)s AND f.bucket = %(bucket)s AND NOT ST_IsEmpty(f.geom_3857)
GROUP BY 2, 3
"""

# A cell of zoom z is exactly four cells of zoom z + 1 (the cell size halves, the grid is
# anchored at the same origin), so floor(x / 2c) = floor(x / c) >> 1: each coarser zoom is
# summed from the finer cells instead of from the points again.
_ROLL_UP_SQL = """
INSERT INTO {build} (z, cx, cy, n, sx, sy, min_id{columns})
SELECT %(z)s, cx >> 1, cy >> 1, sum(n), sum(sx), sum(sy), min(min_id){sums}
FROM {build}
WHERE z = %(z)s + 1
GROUP BY 2, 3
"""

_STORE_SQL = """
INSERT INTO tiles_pointcluster (created_at, updated_at, workspace_id, layer_id, data_version, z, cx, cy,
                                point_count, sum_x, sum_y, min_id, sums, counts)
SELECT now(), now(), %(workspace)s, %(layer)s, %(version)s, z, cx, cy, n, sx, sy, min_id, {sums}, {counts}
FROM {build}
"""

_BUILD_TABLE = "tiles_cluster_build"

# Uses pointcluster_tile_idx (layer, z, data_version, cx, cy): a range of cells around one tile.
TILE_SQL = """
WITH bounds AS (SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS envelope)
SELECT ST_AsMVT(rows.*, %(layer_name)s, {extent}, 'geom', 'id') FROM (
    SELECT c.min_id AS id,
           ST_AsMVTGeom(ST_SetSRID(ST_MakePoint(c.sum_x / c.point_count, c.sum_y / c.point_count), 3857),
                        bounds.envelope, {extent}, {buffer}, true) AS geom,
           jsonb_build_object('cluster', c.point_count > 1, 'point_count', c.point_count{averages}) AS properties
    FROM tiles_pointcluster c, bounds
    WHERE c.layer_id = %(layer)s AND c.z = %(z)s AND c.data_version = %(version)s
      AND c.cx BETWEEN %(cx0)s AND %(cx1)s AND c.cy BETWEEN %(cy0)s AND %(cy1)s
) rows WHERE rows.geom IS NOT NULL
"""


def _numeric(index: int) -> str:
    value = f"f.properties -> %(a{index})s"
    return f"CASE WHEN jsonb_typeof({value}) = 'number' THEN ({value})::numeric END"


@dataclass(frozen=True)
class _BuildSql:
    """The statements of one build, with a sum and a count column per averaged attribute."""

    finest: str
    roll_up: str
    store: str

    @classmethod
    def for_attributes(cls, count: int) -> _BuildSql:
        indexes = range(count)
        columns = "".join(f", s{i}, c{i}" for i in indexes)
        aggregates = "".join(f", sum({_numeric(i)}), count({_numeric(i)})" for i in indexes)
        sums = "".join(f", sum(s{i}), sum(c{i})" for i in indexes)
        as_json = [
            "jsonb_build_object(" + ", ".join(f"%(a{i})s, {kind}{i}" for i in indexes) + ")" if count else "'{}'::jsonb"
            for kind in ("s", "c")
        ]
        return cls(
            finest=_FINEST_SQL.format(build=_BUILD_TABLE, columns=columns, aggregates=aggregates),
            roll_up=_ROLL_UP_SQL.format(build=_BUILD_TABLE, columns=columns, sums=sums),
            store=_STORE_SQL.format(build=_BUILD_TABLE, sums=as_json[0], counts=as_json[1]),
        )


def _create_build_table(cursor: Any, attributes: int) -> None:
    extra = "".join(f", s{i} numeric, c{i} bigint" for i in range(attributes))
    # A build earlier in the same outer transaction (tests wrap everything in one) left its table.
    cursor.execute(f"DROP TABLE IF EXISTS {_BUILD_TABLE}")
    cursor.execute(
        f"CREATE TEMPORARY TABLE {_BUILD_TABLE} (z smallint, cx bigint, cy bigint, n bigint, sx float8, sy float8,"
        f" min_id bigint{extra}) ON COMMIT DROP"
    )


# Namespace of the advisory locks that make one layer's builds take turns (the second key hashes the layer id).
_BUILD_LOCK_NAMESPACE = 7301


def layer_for_build(layer: Layer) -> Layer:
    """The layer row a build labels its output with, read before the build reads any feature.

    Every commit that changes a layer's features also bumps its data_version, so the
    features a build reads afterwards are at least as new as this version; if they are
    newer, the layer is already past it and the output is never used. Edits go on
    meanwhile: the row is held only FOR KEY SHARE (an edit's update of it does not touch
    its keys), which keeps the layer from being deleted under the build. FOR UPDATE would
    hold every edit of the layer for the whole build (a minute for 10M points). Builds of
    one layer take turns on a transaction-level advisory lock, so two tiling jobs never
    interleave their deletes and inserts.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [_BUILD_LOCK_NAMESPACE, str(layer.pk)])
        cursor.execute("SELECT 1 FROM layers_layer WHERE id = %s FOR KEY SHARE", [layer.pk])
    return Layer.objects.for_workspace(layer.workspace_id).get(pk=layer.pk)


def build_point_clusters(layer: Layer, *, max_zoom: int, cells_per_tile: int, attributes: list[str]) -> int:
    """Replace the layer's clusters with ones for its current data version; returns the cell count.

    One transaction: readers keep the previous version's cells (unused once the
    version moved on) until the new ones are complete. The points are read once,
    for `max_zoom`; the coarser zooms are summed from its cells.
    """
    statements = _BuildSql.for_attributes(len(attributes))
    names = {f"a{i}": name for i, name in enumerate(attributes)}
    with transaction.atomic(), connection.cursor() as cursor:
        locked = layer_for_build(layer)
        cursor.execute("DELETE FROM tiles_pointcluster WHERE layer_id = %s", [layer.pk])
        _create_build_table(cursor, len(attributes))
        cell = _cell_size(max_zoom, cells_per_tile)
        cursor.execute(
            statements.finest, {"z": max_zoom, "cell": cell, "layer": layer.pk, "bucket": layer.storage_bucket, **names}
        )
        for z in range(max_zoom - 1, -1, -1):
            cursor.execute(statements.roll_up, {"z": z})
        params = {"workspace": layer.workspace_id, "layer": layer.pk, "version": locked.data_version, **names}
        cursor.execute(statements.store, params)
        cells = cursor.rowcount
        TilingState.objects.for_workspace(layer.workspace_id).update_or_create(
            layer=layer,
            defaults={
                "workspace_id": layer.workspace_id,
                "data_version": locked.data_version,
                "max_zoom": max_zoom,
                "attributes": attributes,
                "built_at": timezone.now(),
                "cells": cells,
            },
        )
    return cells


def precomputed_version(layer: Layer) -> TilingState | None:
    """The built aggregates if they match the layer's current data (else tiles compute on the fly)."""
    state = TilingState.objects.for_workspace(layer.workspace_id).filter(layer_id=layer.pk).first()
    if state is None or state.data_version != layer.data_version:
        return None
    return state


def cell_range(z: int, x: int, y: int, cells_per_tile: int) -> dict[str, int]:
    """Cell indexes covering tile z/x/y, one cell of margin for the tile buffer."""
    half = cells_per_tile * 2**z // 2
    return {
        "cx0": x * cells_per_tile - half - 1,
        "cx1": (x + 1) * cells_per_tile - half,
        "cy0": half - (y + 1) * cells_per_tile - 1,
        "cy1": half - y * cells_per_tile,
    }


def tile_from_aggregates(params: dict[str, Any], *, attributes: list[str], extent: int, buffer: int) -> bytes:
    averages = "".join(
        f", 'avg_' || %(a{i})s, round(((c.sums ->> %(a{i})s)::numeric"
        f" / nullif((c.counts ->> %(a{i})s)::numeric, 0)), 2)"
        for i in range(len(attributes))
    )
    sql = TILE_SQL.format(extent=extent, buffer=buffer, averages=averages)
    with connection.cursor() as cursor:
        cursor.execute(sql, {**params, **{f"a{i}": name for i, name in enumerate(attributes)}})
        row = cursor.fetchone()
    return bytes(row[0]) if row and row[0] else b""
