"""Viewport clusters and attribute statistics, computed in PostGIS.

Both are read-only SQL over layers_feature for one layer, filtered by the
shared attribute vocabulary (apps/layers/filters.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import connection

from apps.core.errors import ApplicationError
from apps.layers.filters import Condition, filters_sql
from apps.layers.models import Layer
from apps.tiles.pointcolumns import viewport_clusters_from_columns

NUMERIC = ("integer", "number")
WEB_MERCATOR_SPAN = 2 * 20037508.342789244
CLUSTER_CELLS_PER_TILE = 16
MAX_NUMERIC_ATTRIBUTES = 10
TOP_VALUES = 50


@dataclass(frozen=True)
class Viewport:
    west: float
    south: float
    east: float
    north: float
    zoom: float

    @classmethod
    def parse(cls, params: dict[str, str]) -> Viewport:
        """Validated bounds: ranges, north above south; west > east means it crosses the antimeridian."""
        values: dict[str, float] = {}
        for name, low, high in (
            ("west", -180, 180),
            ("east", -180, 180),
            ("south", -90, 90),
            ("north", -90, 90),
            ("zoom", 0, 22),
        ):
            raw = params.get(name)
            if raw in (None, ""):
                raise ApplicationError("Required.", field=name)
            try:
                value = float(raw)
            except ValueError:
                raise ApplicationError(f"Expected a number, got {raw!r}.", field=name) from None
            if not low <= value <= high:
                raise ApplicationError(f"Must be between {low} and {high}.", field=name)
            values[name] = value
        if values["north"] <= values["south"]:
            raise ApplicationError("north must be greater than south.", field="north")
        return cls(**values)

    def envelopes(self) -> list[tuple[float, float, float, float]]:
        """One box, or two when the view crosses the antimeridian."""
        if self.west <= self.east:
            return [(self.west, self.south, self.east, self.north)]
        return [(self.west, self.south, 180.0, self.north), (-180.0, self.south, self.east, self.north)]


def numeric_attributes(layer: Layer) -> list[str]:
    return sorted(n for n, t in layer.attribute_schema.items() if t in NUMERIC)[:MAX_NUMERIC_ATTRIBUTES]


def _in_viewport_sql(viewport: Viewport) -> tuple[str, dict[str, Any]]:
    # Uses the GiST index on geom (4326): one && per box.
    boxes, params = [], {}
    for i, (w, s, e, n) in enumerate(viewport.envelopes()):
        boxes.append(f"f.geom && ST_MakeEnvelope(%(w{i})s, %(s{i})s, %(e{i})s, %(n{i})s, 4326)")
        params |= {f"w{i}": w, f"s{i}": s, f"e{i}": e, f"n{i}": n}
    return "(" + " OR ".join(boxes) + ")", params


def _number(index: int) -> str:
    value = f"f.properties -> %(a{index})s"
    return f"CASE WHEN jsonb_typeof({value}) = 'number' THEN ({value})::numeric END"


def viewport_clusters(layer: Layer, viewport: Viewport, conditions: tuple[Condition, ...]) -> list[dict[str, Any]]:
    """Grid clusters (count, centroid, min/avg/max of numeric attributes) for a low-zoom view.

    The grid is the tiles' cluster grid at this zoom, so the API and the map agree. A large point layer's
    point columns answer in milliseconds what the SQL below takes seconds for over millions of features
    (apps/tiles/pointcolumns.py); the SQL answers whenever they cannot.
    """
    attributes = numeric_attributes(layer)
    level = int(viewport.zoom) + CLUSTER_CELLS_PER_TILE.bit_length() - 1
    from_columns = viewport_clusters_from_columns(layer, viewport.envelopes(), level, conditions, attributes)
    if from_columns is not None:
        return from_columns
    stats = "".join(f", min({_number(i)}), avg({_number(i)}), max({_number(i)})" for i in range(len(attributes)))
    where, params = _in_viewport_sql(viewport)
    filters, filter_params = filters_sql(conditions)
    # Fragments are fixed text from this module and filters.py; every value is bound.
    sql = f"""
        SELECT cells.n, ST_X(cells.c), ST_Y(cells.c), cells.*
        FROM (
            SELECT count(*) AS n, ST_Transform(ST_Centroid(ST_Collect(f.geom_3857)), 4326) AS c{stats}
            FROM layers_feature f
            WHERE f.layer_id = %(layer_id)s AND f.bucket = %(bucket)s AND {where}{filters}
            GROUP BY floor(ST_X(f.geom_3857) / %(cell)s), floor(ST_Y(f.geom_3857) / %(cell)s)
        ) cells
        ORDER BY cells.n DESC
    """  # noqa: S608
    params |= filter_params | {f"a{i}": name for i, name in enumerate(attributes)}
    params |= {
        "layer_id": layer.pk,
        "bucket": layer.storage_bucket,
        "cell": WEB_MERCATOR_SPAN / (2 ** int(viewport.zoom)) / CLUSTER_CELLS_PER_TILE,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    # Each row: n, lon, lat, then the inner columns again (n, c, min0, avg0, max0, …).
    return [_cluster((row[0], row[1], row[2], *row[5:]), attributes) for row in rows]


def _cluster(row: tuple[Any, ...], attributes: list[str]) -> dict[str, Any]:
    count, lon, lat, *values = row
    stats = {
        name: {"min": _num(values[3 * i]), "avg": _num(values[3 * i + 1]), "max": _num(values[3 * i + 2])}
        for i, name in enumerate(attributes)
    }
    return {"count": count, "centroid": [round(lon, 7), round(lat, 7)], "stats": stats}


def _num(value: Any) -> float | None:
    return None if value is None else round(float(value), 4)


def viewport_features(
    layer: Layer, viewport: Viewport, conditions: tuple[Condition, ...], *, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    """Up to `limit` features' attributes in view (no geometry), and whether more were left out."""
    where, params = _in_viewport_sql(viewport)
    filters, filter_params = filters_sql(conditions)
    sql = f"""
        SELECT f.id, f.version, f.properties FROM layers_feature f
        WHERE f.layer_id = %(layer_id)s AND f.bucket = %(bucket)s AND {where}{filters}
        ORDER BY f.id LIMIT %(limit)s
    """  # noqa: S608 (fixed fragments; values bound)
    with connection.cursor() as cursor:
        cursor.execute(
            sql, params | filter_params | {"layer_id": layer.pk, "bucket": layer.storage_bucket, "limit": limit + 1}
        )
        rows = cursor.fetchall()
    # Django leaves jsonb from a raw cursor as text (its JSONField decodes it itself).
    features = [{"id": i, "version": v, "properties": json.loads(p)} for i, v, p in rows[:limit]]
    return features, len(rows) > limit


STATS_TTL_SECONDS = 7 * 24 * 60 * 60
MAX_STATS_ATTRIBUTES = 30

# One scan per attribute over the layer's rows, via the (layer_id, id) index.
_NUMERIC_STATS_SQL = """
    SELECT count(v), min(v), max(v),
           percentile_cont(ARRAY[0.05, 0.25, 0.5, 0.75, 0.95]) WITHIN GROUP (ORDER BY v)
    FROM (
        SELECT (f.properties -> %(name)s)::numeric AS v FROM layers_feature f
        WHERE f.layer_id = %(layer_id)s AND f.bucket = %(bucket)s AND jsonb_typeof(f.properties -> %(name)s) = 'number'
    ) numbers
"""
_VALUES_SQL = """
    SELECT f.properties ->> %(name)s AS value, count(*) AS n FROM layers_feature f
    WHERE f.layer_id = %(layer_id)s AND f.bucket = %(bucket)s AND f.properties ? %(name)s
    GROUP BY 1 ORDER BY n DESC, value LIMIT %(top)s
"""
_DISTINCT_SQL = """
    SELECT count(DISTINCT f.properties ->> %(name)s), min(f.properties ->> %(name)s),
           max(f.properties ->> %(name)s)
    FROM layers_feature f WHERE f.layer_id = %(layer_id)s AND f.bucket = %(bucket)s AND f.properties ? %(name)s
"""


def _numeric_stats(cursor: Any, params: dict[str, Any]) -> dict[str, Any]:
    cursor.execute(_NUMERIC_STATS_SQL, params)
    count, low, high, quantiles = cursor.fetchone()
    keys = ("p05", "p25", "median", "p75", "p95")
    return {
        "count": count,
        "min": _num(low),
        "max": _num(high),
        "quantiles": dict(zip(keys, (_num(q) for q in quantiles or [None] * 5), strict=True)),
    }


def _value_stats(cursor: Any, params: dict[str, Any]) -> dict[str, Any]:
    cursor.execute(_DISTINCT_SQL, params)
    distinct, low, high = cursor.fetchone()
    cursor.execute(_VALUES_SQL, params | {"top": TOP_VALUES})
    values = [{"value": value, "count": n} for value, n in cursor.fetchall()]
    return {"distinct": distinct, "min": low, "max": high, "values": values, "values_truncated": distinct > len(values)}


def compute_attribute_stats(layer: Layer) -> dict[str, Any]:
    """Per attribute: numbers get min / max / quantiles; others distinct and most common values."""
    stats: dict[str, Any] = {}
    with connection.cursor() as cursor:
        for name, kind in sorted(layer.attribute_schema.items())[:MAX_STATS_ATTRIBUTES]:
            params = {"name": name, "layer_id": layer.pk, "bucket": layer.storage_bucket}
            summary = _numeric_stats(cursor, params) if kind in NUMERIC else _value_stats(cursor, params)
            stats[name] = {"type": kind, **summary}
    return {"data_version": layer.data_version, "feature_count": layer.feature_count, "attributes": stats}


def attribute_stats(layer: Layer) -> dict[str, Any]:
    """Cached per data version (an edit makes a new key); the tiling job warms it after imports."""
    key = f"layerstats:{layer.pk}:{layer.data_version}"
    stats = cache.get(key)
    if stats is None:
        stats = compute_attribute_stats(layer)
        cache.set(key, stats, timeout=STATS_TTL_SECONDS)
    return stats
