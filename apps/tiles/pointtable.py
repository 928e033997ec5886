"""The point table: a compact, Morton-ordered copy of a large point layer for filtered cluster tiles.

Precomputed cluster cells (aggregates.py) cannot answer `?price__gte=…`: the
filter changes which points fall in each cell. Scanning the features instead
reads hundreds of thousands of jsonb rows for one low-zoom tile. The point table
keeps per point only its z20 Morton key, exact Web Mercator x / y, its feature id
and the filterable attributes in typed slots (numbers, ISO dates as YYYYMMDD numbers,
low-cardinality strings as dictionary codes), ordered by (layer, key): a tile is
a few contiguous key ranges, and its cluster cells are `key >> shift`.

Cells, centroids (mean of the exact coordinates), ids (smallest feature id),
counts and averages are those of `mvt.CLUSTER_SQL`; tiles read the table only
while its data version is the layer's current one, so an edit never shows
stale points: tiles compute on the fly until the tiling job rebuilt it.
"""

from __future__ import annotations

import math
import time
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.layers.models import GeometryType, Layer
from apps.tiles.aggregates import layer_for_build
from apps.tiles.models import ClusterPointCode, TilingState

KEY_ZOOM = 20
WORLD_HALF = 20037508.342789244
KEY_CELL = 2 * WORLD_HALF / 2**KEY_ZOOM
NUMBER_SLOTS = ("n0", "n1", "n2", "n3", "n4", "n5")
CODE_SLOTS = ("c0", "c1", "c2", "c3")
MAX_CODES = 256  # a string attribute with more distinct values is not low-cardinality: filters on it fall back
# Spreads 10 bits to the even bits of 20: two lookups per axis make a z20 Morton key in plain SQL.
SPREAD_10_BITS = [sum(((v >> i) & 1) << (2 * i) for i in range(10)) for v in range(1024)]


def layer_needs_point_table(layer: Layer) -> bool:
    return layer.geometry_type == GeometryType.POINT and layer.feature_count >= settings.TILES_POINT_TABLE_MIN_FEATURES


# --- build ------------------------------------------------------------------------------------

_DISTINCT_SQL = """
SELECT DISTINCT f.properties ->> %(name)s FROM layers_feature f
WHERE f.layer_id = %(layer)s AND f.bucket = %(bucket)s AND f.properties ->> %(name)s IS NOT NULL LIMIT %(limit)s
"""

# One scan of the layer's features (the (layer_id, id) btree), written in key order so the
# table is physically clustered on (layer, key) without a CLUSTER pass.
_INSERT_SQL = """
INSERT INTO tiles_clusterpoint (workspace_id, layer_id, key, feature_id, x, y{slots})
SELECT %(workspace)s, %(layer)s,
       (%(lut)s::bigint[])[(q.ix & 1023) + 1] | ((%(lut)s::bigint[])[(q.ix >> 10) + 1] << 20)
       | (((%(lut)s::bigint[])[(q.iy & 1023) + 1] | ((%(lut)s::bigint[])[(q.iy >> 10) + 1] << 20)) << 1),
       q.id, q.x, q.y{values}
FROM (
    SELECT f.id, f.properties, ST_X(f.geom_3857) AS x, ST_Y(f.geom_3857) AS y,
           least(greatest(floor((ST_X(f.geom_3857) + %(half)s) / %(cell)s), 0), %(last)s)::bigint AS ix,
           -- rows counted from the north edge, as tile y is (a tile is one key range), but floored
           -- upwards as CLUSTER_SQL floors: a point on a cell edge lands in the same cell
           %(last)s - least(greatest(floor((ST_Y(f.geom_3857) + %(half)s) / %(cell)s), 0), %(last)s)::bigint AS iy
    FROM layers_feature f
    WHERE f.layer_id = %(layer)s AND f.bucket = %(bucket)s AND NOT ST_IsEmpty(f.geom_3857)
) q
ORDER BY 3
"""


# Dates are slotted as YYYYMMDD numbers only when every value of the attribute is a canonical
# ISO date: for those strings, number order is text order, which is how the fallback compares.
_CANONICAL_DATE = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_OTHER_DATES_SQL = """
SELECT EXISTS (
    SELECT 1 FROM layers_feature f
    WHERE f.layer_id = %(layer)s AND f.bucket = %(bucket)s
      AND f.properties ->> %(name)s IS NOT NULL AND f.properties ->> %(name)s !~ %(pattern)s
)
"""


def _only_canonical_dates(cursor: Any, layer: Layer, name: str) -> bool:
    params = {"layer": layer.pk, "bucket": layer.storage_bucket, "name": name, "pattern": _CANONICAL_DATE}
    cursor.execute(_OTHER_DATES_SQL, params)
    return not cursor.fetchone()[0]


def _date_value(name_param: str) -> str:
    return f"replace(q.properties ->> %({name_param})s, '-', '')::float8"


def _number_value(name_param: str) -> str:
    value = f"q.properties -> %({name_param})s"
    return f"CASE WHEN jsonb_typeof({value}) = 'number' THEN ({value})::float8 END"


def _string_codes(cursor: Any, layer: Layer, name: str) -> list[str] | None:
    cursor.execute(
        _DISTINCT_SQL, {"name": name, "layer": layer.pk, "bucket": layer.storage_bucket, "limit": MAX_CODES + 1}
    )
    values = sorted(row[0] for row in cursor.fetchall())
    return values if len(values) <= MAX_CODES else None


def _columns_for(cursor: Any, layer: Layer) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
    """The slot of each attribute that fits one (averaged attributes first) and each string's dictionary."""
    wanted = list((layer.style_config or {}).get("cluster_properties", []))
    names = [*dict.fromkeys([*wanted, *sorted(layer.attribute_schema)])]
    numbers = [n for n in names if layer.attribute_schema.get(n) in ("integer", "number")][: len(NUMBER_SLOTS)]
    columns: dict[str, dict[str, Any]] = {
        name: {"slot": slot, "kind": "number"} for slot, name in zip(NUMBER_SLOTS, numbers, strict=False)
    }
    free_numbers = list(NUMBER_SLOTS[len(numbers) :])
    for name in (n for n in names if layer.attribute_schema.get(n) == "date"):
        if free_numbers and _only_canonical_dates(cursor, layer, name):
            columns[name] = {"slot": free_numbers.pop(0), "kind": "date"}
    dictionaries: dict[str, list[str]] = {}
    strings = iter(CODE_SLOTS)
    for name in (n for n in names if layer.attribute_schema.get(n) == "string"):
        codes = _string_codes(cursor, layer, name)
        slot = next(strings, None) if codes is not None else None
        if slot is not None and codes is not None:
            columns[name] = {"slot": slot, "kind": "code"}
            dictionaries[name] = codes
    return columns, dictionaries


def _insert_points(cursor: Any, layer: Layer, columns: dict[str, dict[str, Any]]) -> int:
    slots, values, names = "", "", {}
    for i, (name, mapping) in enumerate(columns.items()):
        names[f"a{i}"] = name
        slots += f", {mapping['slot']}"
        if mapping["kind"] == "number":
            values += f", {_number_value(f'a{i}')}"
        elif mapping["kind"] == "date":
            values += f", {_date_value(f'a{i}')}"
        else:  # the code is the value's position in the sorted dictionary
            names[f"d{i}"] = mapping["codes"]
            values += f", (array_position(%(d{i})s::text[], q.properties ->> %(a{i})s) - 1)::smallint"
    params = {
        "workspace": layer.workspace_id,
        "layer": layer.pk,
        "bucket": layer.storage_bucket,
        "lut": SPREAD_10_BITS,
        "half": WORLD_HALF,
        "cell": KEY_CELL,
        "last": 2**KEY_ZOOM - 1,
        **names,
    }
    cursor.execute(_INSERT_SQL.format(slots=slots, values=values), params)
    return cursor.rowcount


def _integral_numbers(cursor: Any, layer: Layer, columns: dict[str, dict[str, Any]]) -> None:
    """Mark number slots holding only whole numbers: their float8 sums are exact, so averages need no numeric."""
    numbers = [m for m in columns.values() if m["kind"] == "number"]
    if not numbers:
        return
    checks = ", ".join(
        f"coalesce(bool_and({m['slot']} = trunc({m['slot']}) AND abs({m['slot']}) < 2 ^ 53), true)" for m in numbers
    )
    cursor.execute(f"SELECT {checks} FROM tiles_clusterpoint WHERE layer_id = %s", [layer.pk])  # noqa: S608 (slot names are ours)
    for mapping, integral in zip(numbers, cursor.fetchone(), strict=True):
        mapping["integral"] = bool(integral)


def _store_codes(layer: Layer, dictionaries: dict[str, list[str]], columns: dict[str, dict[str, Any]]) -> None:
    ClusterPointCode.objects.bulk_create(
        ClusterPointCode(
            workspace_id=layer.workspace_id, layer_id=layer.pk, slot=int(columns[name]["slot"][1:]), code=i, value=v
        )
        for name, values in dictionaries.items()
        for i, v in enumerate(values)
    )


def build_point_table(layer: Layer) -> TilingState:
    """Replace the layer's point table with one for its current data version.

    One transaction, labelled as `aggregates.layer_for_build` explains (edits go on
    meanwhile; one that commits during the build leaves the table unused): tiles keep
    computing on the fly until it commits.
    """
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        locked = layer_for_build(layer)
        cursor.execute("DELETE FROM tiles_clusterpoint WHERE layer_id = %s", [layer.pk])
        cursor.execute("DELETE FROM tiles_clusterpointcode WHERE layer_id = %s", [layer.pk])
        columns, dictionaries = _columns_for(cursor, locked)
        for name, values in dictionaries.items():
            columns[name]["codes"] = values
        rows = _insert_points(cursor, locked, columns)
        for mapping in columns.values():
            mapping.pop("codes", None)
        _integral_numbers(cursor, locked, columns)
        _store_codes(locked, dictionaries, columns)
        points = {
            "points_data_version": locked.data_version,
            "points_status": "ready",
            "points_columns": columns,
            "points_rows": rows,
            "points_build_seconds": round(time.perf_counter() - started, 3),
        }
        state, _ = TilingState.objects.for_workspace(layer.workspace_id).update_or_create(
            layer=locked,
            # without cluster aggregates yet: data_version -1 never matches, so they are not used
            create_defaults={
                "workspace_id": layer.workspace_id,
                "data_version": -1,
                "max_zoom": 0,
                "built_at": timezone.now(),
                **points,
            },
            defaults=points,
        )
    return state


def current_point_table(layer: Layer) -> TilingState | None:
    """The layer's point table state if it holds the layer's current data (else tiles compute on the fly)."""
    state = TilingState.objects.for_workspace(layer.workspace_id).filter(layer_id=layer.pk).first()
    if state is None or state.points_status != "ready" or state.points_data_version != layer.data_version:
        return None
    return state


# --- tiles ------------------------------------------------------------------------------------


def _morton(cx: int, cy: int) -> int:
    return (
        SPREAD_10_BITS[cx & 1023]
        | SPREAD_10_BITS[cx >> 10] << 20
        | (SPREAD_10_BITS[cy & 1023] | SPREAD_10_BITS[cy >> 10] << 20) << 1
    )


def _merged_ranges(columns: range, rows: range, shift: int) -> tuple[list[int], list[int]]:
    """The key ranges of the cells in columns by rows (at the level `shift` implies), adjacent ones merged."""
    lows: list[int] = []
    highs: list[int] = []
    for cell in sorted(_morton(cx, cy) for cx in columns for cy in rows):
        if lows and highs[-1] + 1 == cell << shift:
            highs[-1] = ((cell + 1) << shift) - 1
        else:
            lows.append(cell << shift)
            highs.append(((cell + 1) << shift) - 1)
    return lows, highs


def key_ranges(z: int, x: int, y: int, cells_per_tile: int) -> tuple[list[int], list[int], int] | None:
    """Key ranges covering tile z/x/y plus one cluster cell of margin, and the shift from key to cell.

    None when cluster cells are finer than the key grid.
    """
    level = z + cells_per_tile.bit_length() - 1
    if level > KEY_ZOOM:
        return None
    shift = 2 * (KEY_ZOOM - level)
    last = 2**level - 1
    columns = range(max(0, x * cells_per_tile - 1), min(last, (x + 1) * cells_per_tile) + 1)
    rows = range(max(0, y * cells_per_tile - 1), min(last, (y + 1) * cells_per_tile) + 1)
    return (*_merged_ranges(columns, rows, shift), shift)


MAX_BOX_CELLS = 4096


def _cell_index(value: float, level: int) -> int:
    """The column (or row from the south) of the cell at `level` holding a coordinate, clamped to the grid."""
    last = 2**level - 1
    if math.isinf(value):
        return last if value > 0 else 0
    return int(min(max((value + WORLD_HALF) // (2 * WORLD_HALF / 2**level), 0), last))


def box_key_ranges(box: tuple[float, float, float, float], *, max_level: int = KEY_ZOOM) -> tuple[list[int], list[int]]:
    """Key ranges covering a Web Mercator box (xmin, xmax, ymin, ymax; infinite sides reach the grid's edge).

    Made of the finest cells (at most `max_level`) of which at most MAX_BOX_CELLS cover the box, with one cell
    of margin (a point on a cell edge may be keyed to either side): a prefilter for an
    exact test of the coordinates, like the tiles' ranges.
    """
    xmin, xmax, ymin, ymax = box
    for level in range(max_level, -1, -1):
        last = 2**level - 1
        columns = range(max(0, _cell_index(xmin, level) - 1), min(last, _cell_index(xmax, level) + 1) + 1)
        rows = range(max(0, last - _cell_index(ymax, level) - 1), min(last, last - _cell_index(ymin, level) + 1) + 1)
        if len(columns) * len(rows) <= MAX_BOX_CELLS or level == 0:
            return _merged_ranges(columns, rows, 2 * (KEY_ZOOM - level))
    raise AssertionError("level 0 always returns")
