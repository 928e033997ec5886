"""Precomputed point clusters per zoom: built by the tiling job, read by low-zoom tiles.

The grid is the one `mvt.CLUSTER_SQL` uses on the fly (CLUSTER_CELLS cells per
tile side, aligned with tile edges, centroid = mean of the points, id = the
smallest feature id), so a precomputed tile and an on-the-fly tile are the same.
Rows carry the layer's data_version; a tile uses them only when that version is
the layer's current one, so an edit never shows a stale cluster.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.layers.models import Layer
from apps.tiles.models import TilingState

WEB_MERCATOR_SPAN = 2 * 20037508.342789244


def _cell_size(z: int, cells_per_tile: int) -> float:
    return WEB_MERCATOR_SPAN / (2**z) / cells_per_tile


# One scan of the layer's points per zoom (via the (layer_id, id) btree); the GROUP BY
# is the on-the-fly cluster grid. Names of averaged attributes are bound parameters.
_BUILD_SQL = """
INSERT INTO tiles_pointcluster (created_at, updated_at, workspace_id, layer_id, data_version, z, cx, cy,
                                point_count, sum_x, sum_y, min_id, sums, counts)
SELECT now(), now(), %(workspace)s, %(layer)s, %(version)s, %(z)s, cells.cx, cells.cy,
       cells.n, cells.sx, cells.sy, cells.min_id, cells.sums, cells.counts
FROM (
    SELECT floor(ST_X(f.geom_3857) / %(cell)s)::bigint AS cx, floor(ST_Y(f.geom_3857) / %(cell)s)::bigint AS cy,
           count(*) AS n, sum(ST_X(f.geom_3857)) AS sx, sum(ST_Y(f.geom_3857)) AS sy, min(f.id) AS min_id,
           {sums} AS sums, {counts} AS counts
    FROM layers_feature f
    WHERE f.layer_id = %(layer)s AND NOT ST_IsEmpty(f.geom_3857)
    GROUP BY 1, 2
) cells
"""

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


def _aggregate_sql(attributes: list[str]) -> tuple[str, str]:
    if not attributes:
        return "'{}'::jsonb", "'{}'::jsonb"
    sums = ", ".join(f"%(a{i})s, sum({_numeric(i)})" for i in range(len(attributes)))
    counts = ", ".join(f"%(a{i})s, count({_numeric(i)})" for i in range(len(attributes)))
    return f"jsonb_build_object({sums})", f"jsonb_build_object({counts})"


def build_point_clusters(layer: Layer, *, max_zoom: int, cells_per_tile: int, attributes: list[str]) -> int:
    """Replace the layer's clusters with ones for its current data version; returns the cell count.

    One transaction: readers keep the previous version's cells (unused once the
    version moved on) until the new ones are complete.
    """
    sums, counts = _aggregate_sql(attributes)
    sql = _BUILD_SQL.format(sums=sums, counts=counts)
    names = {f"a{i}": name for i, name in enumerate(attributes)}
    with transaction.atomic(), connection.cursor() as cursor:
        locked = Layer.objects.for_workspace(layer.workspace_id).select_for_update().get(pk=layer.pk)
        cursor.execute("DELETE FROM tiles_pointcluster WHERE layer_id = %s", [layer.pk])
        cells = 0
        for z in range(max_zoom + 1):
            params = {
                "workspace": layer.workspace_id,
                "layer": layer.pk,
                "version": locked.data_version,
                "z": z,
                "cell": _cell_size(z, cells_per_tile),
                **names,
            }
            cursor.execute(sql, params)
            cells += cursor.rowcount
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
