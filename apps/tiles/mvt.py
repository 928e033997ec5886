"""Vector tiles from PostGIS: one `ST_AsMVT` statement per tile (DESIGN §6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connection

from apps.layers.filters import Condition, filters_sql, parse_filters
from apps.layers.models import GeometryType, Layer
from apps.tiles.pointfilters import SLOTS, point_filters_sql

EXTENT = 4096
BUFFER = 64
WEB_MERCATOR_SPAN = 2 * 20037508.342789244
MAX_ZOOM = 22
LAYER_NAME = "features"  # the source-layer name clients style against
MAX_TILE_BYTES = 500 * 1024
SCHEMA_TO_TILEJSON = {"integer": "Number", "number": "Number", "boolean": "Boolean"}

# Uses feature_geom_3857_gist for `geom_3857 && envelope`, and the (layer_id, id)
# btree for the layer filter, in the layer's partition only (bucket prunes the others);
# the geometry is simplified to about one tile unit before clipping so low zooms never ship invisible vertices.
TILE_SQL = """
WITH bounds AS (
    SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS envelope,
           ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(margin)s) AS search
),
rows AS (
    SELECT f.id,
           ST_AsMVTGeom({geometry}, bounds.envelope, {extent}, {buffer}, true) AS geom,
           {properties} AS properties
    FROM layers_feature f, bounds
    WHERE f.layer_id = %(layer_id)s AND f.bucket = %(bucket)s
      AND f.geom_3857 && bounds.search{conditions}
    {sample}
    LIMIT %(limit)s
)
SELECT ST_AsMVT(rows.*, %(layer_name)s, {extent}, 'geom', 'id') FROM rows WHERE rows.geom IS NOT NULL
"""


# Both cluster statements end alike, so the two paths' tiles cannot drift apart: `cells`
# (id, point_count, center and the aggregates) become the tile's features and attributes.
CLUSTER_ROWS_SQL = """rows AS (
    SELECT cells.id,
           ST_AsMVTGeom(cells.center, bounds.envelope, {extent}, {buffer}, true) AS geom,
           jsonb_build_object('cluster', cells.point_count > 1, 'point_count', cells.point_count{averages})
             AS properties
    FROM cells, bounds
)
SELECT ST_AsMVT(rows.*, %(layer_name)s, {extent}, 'geom', 'id') FROM rows WHERE rows.geom IS NOT NULL
"""

# Points are aggregated on a grid aligned with the tile grid (CLUSTER_CELLS cells
# across a tile), so a cluster straddling two tiles is drawn identically by both.
# Uses the same indexes as TILE_SQL; the jsonb column becomes the tile attributes.
CLUSTER_SQL = (
    """
WITH bounds AS (
    SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS envelope,
           -- one whole grid cell of margin: edge cells are complete, so neighbours agree
           ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(cell_margin)s) AS search
),
cells AS (
    SELECT min(f.id) AS id,
           count(*) AS point_count,
           -- the mean of the points (what ST_Centroid(ST_Collect(…)) gives, without building a
           -- collection per cell: twice as fast on a world tile of a million points)
           ST_SetSRID(ST_MakePoint(avg(ST_X(f.geom_3857)), avg(ST_Y(f.geom_3857))), 3857) AS center{aggregates}
    FROM layers_feature f, bounds
    WHERE f.layer_id = %(layer_id)s AND f.bucket = %(bucket)s
      AND f.geom_3857 && bounds.search{conditions}
    GROUP BY floor(ST_X(f.geom_3857) / %(cell)s), floor(ST_Y(f.geom_3857) / %(cell)s)
),
"""  # noqa: S608 (constant text, no input)
    + CLUSTER_ROWS_SQL
)
CLUSTER_CELLS = 16

# The same clusters from the point table (apps/tiles/pointtable.py): a nested loop over a few
# key ranges, each an index range scan of clusterpoint_key_idx (layer, key) on rows stored in
# key order; the exact x / y test trims the ranges to CLUSTER_SQL's search box.
POINT_TABLE_CLUSTER_SQL = (
    """
WITH bounds AS (
    SELECT envelope, ST_XMin(search) AS xmin, ST_XMax(search) AS xmax, ST_YMin(search) AS ymin,
           ST_YMax(search) AS ymax
    FROM (SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS envelope,
                 ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(cell_margin)s) AS search) AS tile
),
cells AS (
    SELECT min(p.feature_id) AS id,
           count(*) AS point_count,
           ST_SetSRID(ST_MakePoint(avg(p.x), avg(p.y)), 3857) AS center{aggregates}
    FROM bounds, unnest(%(lows)s::bigint[], %(highs)s::bigint[]) AS r(low, high)
    -- one index range scan per key range: as a plain join the planner preferred a sequential scan
    CROSS JOIN LATERAL (
        SELECT * FROM tiles_clusterpoint p
        WHERE p.layer_id = %(layer_id)s AND p.key >= r.low AND p.key <= r.high
          AND p.x >= bounds.xmin AND p.x <= bounds.xmax AND p.y >= bounds.ymin AND p.y <= bounds.ymax{conditions}
        OFFSET 0  -- kept a subquery, so each range is its own index scan
    ) AS p
    GROUP BY p.key >> %(shift)s
),
"""  # noqa: S608 (constant text, no input)
    + CLUSTER_ROWS_SQL
)
CLUSTER_MIN_FEATURES = 5_000  # smaller point layers are drawn point by point unless asked


@dataclass(frozen=True)
class TileRequest:
    layer: Layer
    z: int
    x: int
    y: int
    conditions: tuple[Condition, ...] = ()

    @property
    def unit(self) -> float:
        """The size of one tile unit in metres at this zoom."""
        return WEB_MERCATOR_SPAN / (2**self.z) / EXTENT


def tilejson_fields(layer: Layer) -> dict[str, str]:
    """The layer's attributes as TileJSON / MBTiles `vector_layers` field types."""
    return {name: SCHEMA_TO_TILEJSON.get(kind, "String") for name, kind in layer.attribute_schema.items()}


def tile_in_range(z: int, x: int, y: int) -> bool:
    return 0 <= z <= MAX_ZOOM and 0 <= x < 2**z and 0 <= y < 2**z


def _geometry_sql(layer: Layer, *, simplify_units: float) -> str:
    if layer.geometry_type == GeometryType.POINT or simplify_units == 0:
        return "f.geom_3857"
    return "ST_Simplify(f.geom_3857, %(tolerance)s, true)"


def _properties_sql(layer: Layer, *, with_attributes: bool) -> tuple[str, list[str] | None]:
    if not with_attributes:
        return "'{}'::jsonb", None
    chosen = (layer.source_config or {}).get("tile_attributes")
    if chosen is None:
        return "f.properties", None
    return (
        "(SELECT coalesce(jsonb_object_agg(key, value), '{}') FROM jsonb_each(f.properties) "
        "WHERE key = ANY(%(attributes)s))",
        list(chosen),
    )


def _render(request: TileRequest, *, with_attributes: bool, simplify_units: float, sample_every: int) -> bytes:
    properties, attributes = _properties_sql(request.layer, with_attributes=with_attributes)
    conditions, condition_params = filters_sql(request.conditions)
    sql = TILE_SQL.format(
        geometry=_geometry_sql(request.layer, simplify_units=simplify_units),
        properties=properties,
        conditions=conditions,
        sample="AND f.id %% %(sample)s = 0" if sample_every > 1 else "",
        extent=EXTENT,
        buffer=BUFFER,
    )
    params: dict[str, Any] = {
        "z": request.z,
        "x": request.x,
        "y": request.y,
        "margin": BUFFER / EXTENT,
        "layer_id": request.layer.pk,
        "bucket": request.layer.storage_bucket,
        "layer_name": LAYER_NAME,
        "tolerance": request.unit * simplify_units,
        "attributes": attributes,
        "sample": sample_every,
        "limit": 200_000,
        **condition_params,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return bytes(row[0]) if row and row[0] else b""


def clusters_at(layer: Layer, z: int) -> bool:
    """Whether a point layer is drawn as clusters at zoom `z`."""
    if layer.geometry_type != GeometryType.POINT:
        return False
    style = layer.style_config or {}
    wanted = style.get("cluster")
    if wanted is None:
        wanted = layer.feature_count >= CLUSTER_MIN_FEATURES
    return bool(wanted) and z <= style.get("cluster_max_zoom", 11)


def cluster_attributes(layer: Layer) -> list[str]:
    """The numeric attributes cluster features carry averages of (the style's `cluster_properties`)."""
    numeric = {"integer", "number"}
    wanted = (layer.style_config or {}).get("cluster_properties", [])
    return [name for name in wanted if layer.attribute_schema.get(name) in numeric]


def _render_clusters(request: TileRequest) -> bytes:
    attributes = cluster_attributes(request.layer)
    number = "CASE WHEN jsonb_typeof(f.properties -> %(agg{i})s) = 'number' THEN {value} END"
    aggregates = "".join(
        f",\n           sum({number.format(i=i, value=f'(f.properties -> %(agg{i})s)::numeric')}) AS sum{i},"
        f" count({number.format(i=i, value='1')}) AS n{i}"
        for i in range(len(attributes))
    )
    averages = "".join(
        f", 'avg_' || %(agg{i})s, round(cells.sum{i} / nullif(cells.n{i}, 0), 2)" for i in range(len(attributes))
    )
    conditions, condition_params = filters_sql(request.conditions)
    sql = CLUSTER_SQL.format(
        aggregates=aggregates, averages=averages, conditions=conditions, extent=EXTENT, buffer=BUFFER
    )
    params: dict[str, Any] = {
        "z": request.z,
        "x": request.x,
        "y": request.y,
        "cell_margin": 1 / CLUSTER_CELLS,
        "layer_id": request.layer.pk,
        "bucket": request.layer.storage_bucket,
        "layer_name": LAYER_NAME,
        "cell": WEB_MERCATOR_SPAN / (2**request.z) / CLUSTER_CELLS,
        **{f"agg{i}": name for i, name in enumerate(attributes)},
        **condition_params,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return bytes(row[0]) if row and row[0] else b""


def _point_table_aggregates(attributes: list[str], columns: dict[str, Any]) -> tuple[str, str] | None:
    """Sum and count columns per averaged attribute, and their averages as CLUSTER_SQL rounds them."""
    aggregates, averages = "", ""
    for i, name in enumerate(attributes):
        mapping = columns.get(name)
        if not mapping or mapping["kind"] != "number" or mapping["slot"] not in SLOTS:
            return None
        slot = mapping["slot"]
        # whole numbers (|v| < 2^53) sum exactly as bigint; other values are summed as numeric, as CLUSTER_SQL does
        value = f"p.{slot}::bigint" if mapping.get("integral") else f"p.{slot}::numeric"
        aggregates += f",\n           sum({value})::numeric AS sum{i}, count(p.{slot}) AS n{i}"
        averages += f", 'avg_' || %(agg{i})s, round(cells.sum{i} / nullif(cells.n{i}, 0), 2)"
    return aggregates, averages


def _point_table_clusters(request: TileRequest) -> bytes | None:
    """The clustered tile from the layer's point table, or None when it is stale or cannot express a filter."""
    from apps.tiles.pointcolumns import clusters_from_columns
    from apps.tiles.pointtable import current_point_table, key_ranges

    ranges = key_ranges(request.z, request.x, request.y, CLUSTER_CELLS)
    state = current_point_table(request.layer) if ranges else None
    if state is None or ranges is None:
        return None
    conditions = point_filters_sql(request.conditions, state.points_columns)
    attributes = cluster_attributes(request.layer)
    aggregates = _point_table_aggregates(attributes, state.points_columns)
    if conditions is None or aggregates is None:
        return None
    columns_tile = clusters_from_columns(request, state, ranges, attributes, margin=1 / CLUSTER_CELLS)
    if columns_tile is not None:
        return columns_tile
    lows, highs, shift = ranges
    sql = POINT_TABLE_CLUSTER_SQL.format(
        aggregates=aggregates[0], averages=aggregates[1], conditions=conditions[0], extent=EXTENT, buffer=BUFFER
    )
    params: dict[str, Any] = {
        "z": request.z,
        "x": request.x,
        "y": request.y,
        "cell_margin": 1 / CLUSTER_CELLS,
        "layer_id": request.layer.pk,
        "layer": request.layer.pk,
        "layer_name": LAYER_NAME,
        "lows": lows,
        "highs": highs,
        "shift": shift,
        **{f"agg{i}": name for i, name in enumerate(attributes)},
        **conditions[1],
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return bytes(row[0]) if row and row[0] else b""


def _precomputed_clusters(request: TileRequest) -> bytes | None:
    """The tile from the tiling job's aggregates, when they are current and no filter applies."""
    from apps.tiles.aggregates import cell_range, precomputed_version, tile_from_aggregates

    if request.conditions:
        return None  # filters change the clusters: computed on the fly
    state = precomputed_version(request.layer)
    if state is None or request.z > state.max_zoom:
        return None
    params = {
        "z": request.z,
        "x": request.x,
        "y": request.y,
        "layer": request.layer.pk,
        "layer_name": LAYER_NAME,
        "version": state.data_version,
        **cell_range(request.z, request.x, request.y, CLUSTER_CELLS),
    }
    attributes = [name for name in state.attributes if name in cluster_attributes(request.layer)]
    return tile_from_aggregates(params, attributes=attributes, extent=EXTENT, buffer=BUFFER)


def _with_zoom_rules(request: TileRequest) -> TileRequest:
    """Add the style's low-zoom thinning rules that apply at this zoom (validated when saved)."""
    rules = [r for r in (request.layer.style_config or {}).get("zoom_rules", []) if request.z <= r["max_zoom"]]
    if not rules:
        return request
    extra = tuple(c for rule in rules for c in parse_filters(rule["where"], request.layer.attribute_schema))
    return TileRequest(request.layer, request.z, request.x, request.y, request.conditions + extra)


def render_tile(request: TileRequest) -> tuple[bytes, bool]:
    """The tile's MVT bytes and whether it had to be thinned to stay under the size cap.

    Over the cap, the tile is re-rendered without attributes and with coarser
    simplification, then by sampling every n-th feature: a dense tile degrades
    instead of growing without bound.
    """
    request = _with_zoom_rules(request)
    if clusters_at(request.layer, request.z):
        tile = _precomputed_clusters(request)
        if tile is None:
            tile = _point_table_clusters(request)
        return (tile if tile is not None else _render_clusters(request)), False
    tile = _render(request, with_attributes=True, simplify_units=1, sample_every=1)
    if len(tile) <= MAX_TILE_BYTES:
        return tile, False
    tile = _render(request, with_attributes=False, simplify_units=4, sample_every=1)
    sample = 2
    while len(tile) > MAX_TILE_BYTES and sample <= 1024:
        tile = _render(request, with_attributes=False, simplify_units=4, sample_every=sample)
        sample *= 2
    return tile, True
