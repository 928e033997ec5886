"""Point columns: the point table as memory-mapped arrays, for filtered cluster tiles at any zoom.

PostgreSQL spends about 250 ns on each point-table row a filtered cluster tile
reads; the densest z4 tile of a 10M-point layer reads 2.2M of them (over half a
second). The same rows as one file per column, in key order, are filtered and
summed per cluster cell with numpy in a few milliseconds per million points, in
the web process (numpy runs without the GIL). PostgreSQL still encodes the tile:
the cells go into one `ST_AsMVT` statement ending in `mvt.CLUSTER_ROWS_SQL`, so
the tile is the point table's, feature for feature.

The tiling job writes a snapshot per (layer, data version) after the point table
(`export_point_columns`) under TILES_POINT_COLUMNS_ROOT (default MEDIA_ROOT/tiles/points),
a filesystem web and workers share as they share uploads: into a temporary
directory renamed into place, so a reader sees a whole snapshot or none. A tile
uses it only while its version is the layer's current one (as the point table);
otherwise, or for a filter it cannot express, the SQL paths answer.

Exactness: filters are the point table's own conditions (pointfilters.py) on the
same slot values; averages are summed as scaled integers (an attribute is summable
only when every value has at most MAX_SUM_DECIMALS decimals), so `round(sum / n, 2)`
sees the same numeric as the SQL path's `sum(value::numeric)`.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection, transaction

from apps.layers.filters import NUMERIC, Condition
from apps.layers.models import Layer
from apps.tiles.models import TilingState
from apps.tiles.mvt import BUFFER, CLUSTER_ROWS_SQL, EXTENT, LAYER_NAME
from apps.tiles.pointfilters import day_number
from apps.tiles.pointtable import KEY_ZOOM, box_key_ranges, current_point_table

MAX_SUM_DECIMALS = 6
# Raised when the files change shape: snapshots of another format are ignored by readers and rewritten by exports.
FORMAT = 2
COPY_CHUNK_BYTES = 32 * 2**20  # rows are parsed and written this many bytes at a time: a 10M layer never sits in memory
# Key ranges this long are read in place; shorter ones are gathered into one batch (a z10 tile is ~50 short ranges).
LONG_RANGE_ROWS = 4096
_OPEN_LIMIT = 16  # snapshots kept mapped per process (one per layer)
_BINARY_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_BINARY_COPY_HEADER = len(_BINARY_COPY_SIGNATURE) + 8  # then flags and the extension's length (0)
_FIXED = {"key": ("key", "i8"), "id": ("feature_id", "i8"), "x": ("x", "f8"), "y": ("y", "f8")}


def columns_root() -> Path:
    return Path(settings.TILES_POINT_COLUMNS_ROOT or Path(settings.MEDIA_ROOT) / "tiles" / "points")


def _snapshot_dir(layer_id: Any, version: int) -> Path:
    return columns_root() / str(layer_id) / f"v{version}"


# --- export (tiling job) ------------------------------------------------------------------------


def _sum_decimals(cursor: Any, layer_id: Any, slot: str) -> int | None:
    """The fewest decimals every value of a number slot has (as `value::numeric` prints it), if ≤ MAX_SUM_DECIMALS
    and their scaled sum fits in 64 bits; None otherwise (its averages stay with the SQL paths)."""
    checks = ", ".join(f"bool_and({slot}::numeric = round({slot}::numeric, {d}))" for d in range(MAX_SUM_DECIMALS + 1))
    cursor.execute(
        f"SELECT {checks}, max(abs({slot})), count({slot}) FROM tiles_clusterpoint WHERE layer_id = %s",  # noqa: S608 (slot names are ours)
        [layer_id],
    )
    *fits, largest, count = cursor.fetchone()
    decimals = next((d for d, fit in enumerate(fits) if fit is not False), None)
    if decimals is None or (largest or 0) * 10**decimals * max(count, 1) >= 2**62:
        return None
    return decimals


def _export_fields(cursor: Any, layer_id: Any, columns: dict[str, Any]) -> tuple[list[tuple[str, str, str]], dict]:
    """(file name, SQL expression, dtype) per exported column, and the sum decimals of the number slots.

    NULLs become NaN (numbers) or -1 (codes): every binary COPY row then has one size.
    """
    fields = [(name, expression, dtype) for name, (expression, dtype) in _FIXED.items()]
    decimals: dict[str, int] = {}
    for mapping in columns.values():
        slot = mapping["slot"]
        if mapping["kind"] == "code":
            fields.append((slot, f"coalesce({slot}, (-1)::smallint)", "i2"))
            continue
        fields.append((slot, f"coalesce({slot}, 'NaN')", "f8"))
        if mapping["kind"] == "number":
            # whole numbers below 2^53 (checked by the build) have no decimals
            found = 0 if mapping.get("integral") else _sum_decimals(cursor, layer_id, slot)
            if found is not None:
                decimals[slot] = found
                fields.append((f"s{slot}", f"coalesce(round({slot}::numeric * 1e{found})::bigint, 0)", "i8"))
    return fields, decimals


def _copy_columns(cursor: Any, layer_id: Any, fields: list[tuple[str, str, str]], directory: Path) -> int:
    """Stream the layer's point-table rows in key order into one little-endian file per column."""
    layout = [("fields", ">i2")]
    for name, _, dtype in fields:  # each field: its length, then its big-endian value
        layout += [(f"len_{name}", ">i4"), (name, f">{dtype}")]
    row = np.dtype(layout)
    select = ", ".join(expression for _, expression, _ in fields)
    files = {name: open(directory / f"{name}.bin", "wb") for name, _, _ in fields}  # noqa: SIM115 (closed below)
    pending, rows, header_left = bytearray(), 0, _BINARY_COPY_HEADER

    def flush(final: bool) -> None:
        nonlocal pending, rows
        whole = len(pending) // row.itemsize * row.itemsize
        parsed = np.frombuffer(bytes(pending[:whole]), dtype=row)
        if np.any(parsed["fields"] != len(fields)):
            raise ValueError("the point-table copy is not in fixed-size rows")
        for name, _, dtype in fields:
            parsed[name].astype(f"<{dtype}").tofile(files[name])
        rows += len(parsed)
        pending = pending[whole:]
        if final and bytes(pending) != b"\xff\xff":  # the trailer is all that may remain
            raise ValueError(f"unexpected end of the point-table copy ({len(pending)} bytes left)")

    try:
        sql = (
            f"COPY (SELECT {select} FROM tiles_clusterpoint WHERE layer_id = %s ORDER BY key)"  # noqa: S608 (fixed expressions)
            " TO STDOUT (FORMAT BINARY)"
        )
        with cursor.cursor.copy(sql, [layer_id]) as copy:
            for data in copy:
                pending += data
                if header_left and len(pending) >= header_left:
                    if not pending.startswith(_BINARY_COPY_SIGNATURE):
                        raise ValueError("the point-table copy is not in PostgreSQL's binary format")
                    del pending[:header_left]
                    header_left = 0
                if len(pending) >= COPY_CHUNK_BYTES:
                    flush(final=False)
        flush(final=True)
    finally:
        for handle in files.values():
            handle.close()
    return rows


def _dictionaries(cursor: Any, layer_id: Any, columns: dict[str, Any]) -> dict[str, list[str]]:
    cursor.execute("SELECT slot, value FROM tiles_clusterpointcode WHERE layer_id = %s ORDER BY slot, code", [layer_id])
    values: dict[int, list[str]] = {}
    for slot, value in cursor.fetchall():
        values.setdefault(slot, []).append(value)
    return {name: values.get(int(m["slot"][1:]), []) for name, m in columns.items() if m["kind"] == "code"}


def export_point_columns(layer: Layer) -> dict[str, Any] | None:
    """Write the snapshot of the layer's current point table; its summary, or None without a ready table.

    The tiling state row is locked: a rebuild, which updates it last, cannot
    commit other rows under the version this snapshot is labelled with meanwhile.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        state = (
            TilingState.objects.for_workspace(layer.workspace_id)
            .select_for_update()
            .filter(layer_id=layer.pk, points_status="ready")
            .first()
        )
        if state is None or state.points_rows == 0:
            return None
        version = state.points_data_version
        final = _snapshot_dir(layer.pk, version)
        existing = _read_meta(final)
        if existing is not None and existing.get("format") == FORMAT:
            return existing
        shutil.rmtree(final, ignore_errors=True)  # another format: readers ignore it meanwhile
        final.parent.mkdir(parents=True, exist_ok=True)
        # What a killed export left (exports of a layer take turns on the state row, so none is running).
        for abandoned in final.parent.glob(".building-*"):
            shutil.rmtree(abandoned, ignore_errors=True)
        building = final.parent / f".building-{uuid.uuid4().hex}"
        building.mkdir()
        try:
            fields, decimals = _export_fields(cursor, layer.pk, state.points_columns)
            rows = _copy_columns(cursor, layer.pk, fields, building)
            meta = {
                "format": FORMAT,
                "version": version,
                "rows": rows,
                "files": {name: dtype for name, _, dtype in fields},
                "columns": state.points_columns,
                "dictionaries": _dictionaries(cursor, layer.pk, state.points_columns),
                "sum_decimals": decimals,
            }
            (building / "meta.json").write_text(json.dumps(meta))
            _publish(building, final)
        finally:
            shutil.rmtree(building, ignore_errors=True)
    _remove_other_versions(layer.pk, keep=final)
    _sweep_deleted_layers()
    return meta


def _read_meta(directory: Path) -> dict[str, Any] | None:
    try:
        return json.loads((directory / "meta.json").read_text())
    except FileNotFoundError:
        return None


def _publish(building: Path, final: Path) -> None:
    try:
        os.rename(building, final)
    except OSError:
        if not (final / "meta.json").exists():  # another export of the same version won the rename: fine
            raise


def _remove_other_versions(layer_id: Any, *, keep: Path) -> None:
    """Older snapshots of the layer go (a process still mapping one keeps its pages until it lets go)."""
    for directory in (columns_root() / str(layer_id)).iterdir():
        if directory != keep and directory.name.startswith("v"):
            shutil.rmtree(directory, ignore_errors=True)


def point_columns_remove_later(layer_ids: list[Any]) -> None:
    """After the commit that deleted these layers, their snapshots go too (exports also sweep ones left behind)."""

    def remove() -> None:
        for layer_id in layer_ids:
            shutil.rmtree(columns_root() / str(layer_id), ignore_errors=True)

    transaction.on_commit(remove)


def _sweep_deleted_layers() -> None:
    """Remove the snapshots of layers deleted without the services (e.g. the admin's bulk delete)."""
    names = {d.name for d in columns_root().iterdir() if d.is_dir()}
    known = {str(pk) for pk in Layer.objects.unscoped().filter(pk__in=_uuids(names)).values_list("pk", flat=True)}
    for name in names - known:
        shutil.rmtree(columns_root() / name, ignore_errors=True)


def _uuids(names: set[str]) -> list[uuid.UUID]:
    found = []
    for name in names:
        try:
            found.append(uuid.UUID(name))
        except ValueError:
            continue
    return found


# --- reading (web processes) --------------------------------------------------------------------


@dataclass(frozen=True)
class PointColumns:
    version: int
    rows: int
    arrays: dict[str, np.ndarray]
    columns: dict[str, Any]
    dictionaries: dict[str, dict[str, int]]
    sum_decimals: dict[str, int]

    @classmethod
    def open(cls, directory: Path) -> PointColumns:
        meta = json.loads((directory / "meta.json").read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"point columns of format {meta.get('format')}, not {FORMAT}")
        arrays = {
            name: np.memmap(directory / f"{name}.bin", dtype=f"<{dtype}", mode="r", shape=(meta["rows"],))
            for name, dtype in meta["files"].items()
        }
        dictionaries = {
            name: {value: code for code, value in enumerate(values)} for name, values in meta["dictionaries"].items()
        }
        return cls(meta["version"], meta["rows"], arrays, meta["columns"], dictionaries, meta["sum_decimals"])


_opened: dict[str, PointColumns] = {}
_opened_lock = threading.Lock()


def open_point_columns(layer_id: Any, version: int) -> PointColumns | None:
    """The layer's snapshot for `version`, mapped once per process; None when there is none (yet)."""
    key = str(layer_id)
    found = _opened.get(key)
    if found is not None and found.version == version:
        return found
    directory = _snapshot_dir(layer_id, version)
    try:
        snapshot = PointColumns.open(directory)
    except (FileNotFoundError, ValueError):  # not exported yet, removed by a newer export, or of another format
        return None
    if snapshot.rows == 0:
        return None
    with _opened_lock:
        _opened.pop(key, None)
        while len(_opened) >= _OPEN_LIMIT:
            _opened.pop(next(iter(_opened)))
        _opened[key] = snapshot
    return snapshot


# --- filters -------------------------------------------------------------------------------------


class _Rows:
    """Rows of a snapshot in key order: one long key range as views of the mapped files (no copy), or
    several short ones gathered at once (one numpy call per column instead of one per range)."""

    def __init__(self, snapshot: PointColumns, starts: np.ndarray, ends: np.ndarray) -> None:
        self.snapshot = snapshot
        if len(starts) == 1:
            self.rows: slice | np.ndarray = slice(int(starts[0]), int(ends[0]))
        else:  # the positions of every row of every range, in order
            lengths = ends - starts
            self.rows = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        self._read: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._read:
            self._read[name] = self.snapshot.arrays[name][self.rows]
        return self._read[name]


_COMPARE = {
    "eq": np.equal,
    "gt": np.greater,
    "gte": np.greater_equal,
    "lt": np.less,
    "lte": np.less_equal,
}


def _number_mask(rows: _Rows, slot: str, condition: Condition, value: Any) -> np.ndarray:
    column = rows[slot]
    if condition.operator == "in":
        return np.isin(column, value)
    if condition.operator == "ne":  # NaN (SQL NULL) matches no comparison
        return (column != value) & ~np.isnan(column)
    return _COMPARE[condition.operator](column, value)


def _code_mask(rows: _Rows, slot: str, condition: Condition, codes: Any) -> np.ndarray:
    column = rows[slot]
    if condition.operator == "in":
        return np.isin(column, codes)
    if condition.operator == "ne":  # as `c <> code`: rows without a value (-1) never match
        return (column != (-2 if codes is None else codes)) & (column >= 0)
    return np.zeros(len(column), bool) if codes is None else column == codes


def _predicate(snapshot: PointColumns, condition: Condition) -> Any | None:
    """A function of `_Rows` giving the rows' mask, or None when the condition is not one the point table holds.

    Mirrors pointfilters._condition_sql; string ranges (compared under the database's
    collation) and `isnull` are left to the SQL paths.
    """
    mapping = snapshot.columns.get(condition.attribute)
    if not mapping:
        return None
    slot, kind = mapping["slot"], mapping["kind"]
    numbers = kind == "number" and condition.attribute_type in NUMERIC
    dates = kind == "date" and condition.attribute_type == "date"
    if (numbers or dates) and condition.operator in (*_COMPARE, "ne", "in"):
        number = float if numbers else day_number
        value = [number(v) for v in condition.value] if condition.operator == "in" else number(condition.value)
        return lambda rows: _number_mask(rows, slot, condition, value)
    if kind == "code" and condition.attribute_type == "string" and condition.operator in ("eq", "ne", "in"):
        dictionary = snapshot.dictionaries.get(condition.attribute, {})
        if condition.operator == "in":
            codes: Any = [dictionary[str(v)] for v in condition.value if str(v) in dictionary]
        else:
            codes = dictionary.get(str(condition.value))
        return lambda rows: _code_mask(rows, slot, condition, codes)
    return None


# --- cells ---------------------------------------------------------------------------------------


@lru_cache(maxsize=8192)
def _search_box(z: int, x: int, y: int, margin: float) -> tuple[float, float, float, float]:
    """The tile's search box exactly as POINT_TABLE_CLUSTER_SQL computes it (a pure function: memoized)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ST_XMin(s), ST_XMax(s), ST_YMin(s), ST_YMax(s) FROM ST_TileEnvelope(%s, %s, %s, margin => %s) AS s",
            [z, x, y, margin],
        )
        return cursor.fetchone()


# How a column is reduced per cell: NaN (SQL NULL) is left out of min / max / sums, and `valid` counts the rest.
_REDUCERS = {
    "sum": lambda values, starts: np.add.reduceat(values, starts),
    "min": lambda values, starts: np.minimum.reduceat(values, starts),
    "nanmin": lambda values, starts: np.fmin.reduceat(values, starts),
    "nanmax": lambda values, starts: np.fmax.reduceat(values, starts),
    "valid": lambda values, starts: np.add.reduceat(~np.isnan(values), starts, dtype=np.int64),
}


def _reduce_batch(rows: _Rows, keep: np.ndarray, shift: int, reductions: dict[str, tuple[str, str]]) -> dict:
    """Per cell of the kept rows (in key order, so a cell is a run): `count` and each (column, reducer)."""
    if keep.all():  # e.g. an unfiltered view: the columns as they are, without copying them
        kept: slice | np.ndarray = slice(None)
        size = len(keep)
    else:
        kept = np.flatnonzero(keep)
        size = kept.size
    if not size:
        return {}
    cell = rows["key"][kept] >> shift
    starts = np.flatnonzero(np.concatenate(([True], cell[1:] != cell[:-1])))
    reduced = {"cell": cell[starts], "count": np.diff(np.append(starts, size))}
    taken: dict[str, np.ndarray] = {}  # a column several reducers read is copied once
    for output, (column, reducer) in reductions.items():
        if column not in taken:
            taken[column] = rows[column][kept]
        reduced[output] = _REDUCERS[reducer](taken[column], starts)
    return reduced


def _grouped(
    snapshot: PointColumns,
    ranges: tuple[list[int], list[int], int],
    boxes: list[tuple[float, float, float, float]],
    predicates: list,
    reductions: dict[str, tuple[str, str]],
) -> dict[str, np.ndarray]:
    """Rows in the key ranges, inside one of the boxes (xmin, xmax, ymin, ymax, inclusive) and passing every
    predicate, grouped by `key >> shift`: one array per output, a cell per element (`cell`, `count`, …)."""
    lows, highs, shift = ranges
    keys = snapshot.arrays["key"]
    starts = np.searchsorted(keys, lows, side="left")
    ends = np.searchsorted(keys, highs, side="right")
    long = ends - starts >= LONG_RANGE_ROWS
    short = ~long & (ends > starts)
    # A cell never spans two ranges, so each batch is grouped on its own.
    batches = [(starts[i : i + 1], ends[i : i + 1]) for i in np.flatnonzero(long)]
    if short.any():
        batches.append((starts[short], ends[short]))
    parts: list[dict] = []
    for batch_starts, batch_ends in batches:
        rows = _Rows(snapshot, batch_starts, batch_ends)
        x, y = rows["x"], rows["y"]
        keep = np.zeros(len(x), bool)
        for xmin, xmax, ymin, ymax in boxes:
            keep |= (x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax)
        for predicate in predicates:
            keep &= predicate(rows)
        parts.append(_reduce_batch(rows, keep, shift, reductions))
    names = ["cell", "count", *reductions]
    return {name: np.concatenate([p[name] for p in parts if p] or [np.empty(0)]) for name in names}


def _encode(request: Any, cells: dict[str, np.ndarray], attributes: list[tuple[str, str]], decimals: dict) -> bytes:
    counts = cells["count"]
    if not counts.size:
        return b""
    arrays, names, sums, averages = "", "", "", ""
    params: dict[str, Any] = {
        "z": request.z,
        "x": request.x,
        "y": request.y,
        "layer_name": LAYER_NAME,
        "ids": cells["id"].tolist(),
        "counts": counts.tolist(),
        # the mean of the points, as avg(x) gives it (sum / count in float8)
        "cx": (cells["sum_x"] / counts).tolist(),
        "cy": (cells["sum_y"] / counts).tolist(),
    }
    for i, (name, slot) in enumerate(attributes):
        arrays += f", %(scaled{i})s::numeric[], %(valid{i})s::bigint[]"
        names += f", scaled{i}, n{i}"
        # scaled integer times 10^-d: the numeric (value and scale) sum(value::numeric) gives
        sums += f", c.scaled{i} * %(unit{i})s::numeric AS sum{i}, c.n{i}"
        averages += f", 'avg_' || %(agg{i})s, round(cells.sum{i} / nullif(cells.n{i}, 0), 2)"
        params |= {
            f"scaled{i}": cells[f"scaled_{slot}"].tolist(),
            f"valid{i}": cells[f"valid_{slot}"].tolist(),
            f"unit{i}": Decimal(1).scaleb(-decimals[slot]),
            f"agg{i}": name,
        }
    sql = (
        f"""
WITH bounds AS (SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS envelope),
cells AS (
    SELECT c.id, c.point_count, ST_SetSRID(ST_MakePoint(c.cx, c.cy), 3857) AS center{sums}
    FROM unnest(%(ids)s::bigint[], %(counts)s::bigint[], %(cx)s::float8[], %(cy)s::float8[]{arrays})
         AS c(id, point_count, cx, cy{names})
),
"""  # noqa: S608 (fixed text; values are bound)
        + CLUSTER_ROWS_SQL.format(averages=averages, extent=EXTENT, buffer=BUFFER)
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return bytes(row[0]) if row and row[0] else b""


def _predicates(snapshot: PointColumns, conditions: tuple[Condition, ...]) -> list | None:
    predicates = [_predicate(snapshot, condition) for condition in conditions]
    return None if None in predicates else predicates


def clusters_from_columns(
    request: Any, state: TilingState, ranges: tuple[list[int], list[int], int], attributes: list[str], margin: float
) -> bytes | None:
    """The clustered tile from the layer's point columns, or None (no snapshot of this version, a filter or an
    averaged attribute they cannot express): the caller then asks the point table."""
    snapshot = open_point_columns(request.layer.pk, state.points_data_version)
    if snapshot is None:
        return None
    predicates = _predicates(snapshot, request.conditions)
    slots = [snapshot.columns.get(name, {}).get("slot") for name in attributes]
    if predicates is None or any(slot not in snapshot.sum_decimals for slot in slots):
        return None
    reductions = {"id": ("id", "min"), "sum_x": ("x", "sum"), "sum_y": ("y", "sum")}
    for slot in slots:
        reductions |= {f"scaled_{slot}": (f"s{slot}", "sum"), f"valid_{slot}": (slot, "valid")}
    box = _search_box(request.z, request.x, request.y, margin)
    cells = _grouped(snapshot, ranges, [box], predicates, reductions)
    return _encode(request, cells, list(zip(attributes, slots, strict=True)), snapshot.sum_decimals)


# --- viewport clusters (the layers API) ----------------------------------------------------------------

_MERCATOR_CORNERS_SQL = """
SELECT ST_X(low), ST_X(high), ST_Y(low), ST_Y(high)
FROM unnest(%(west)s::float8[], %(south)s::float8[], %(east)s::float8[], %(north)s::float8[]) WITH ORDINALITY
     AS b(west, south, east, north, i),
     LATERAL ST_Transform(ST_SetSRID(ST_MakePoint(b.west, b.south), 4326), 3857) AS low,
     LATERAL ST_Transform(ST_SetSRID(ST_MakePoint(b.east, b.north), 4326), 3857) AS high
ORDER BY b.i
"""

_LON_LAT_SQL = """
SELECT ST_X(p), ST_Y(p)
FROM unnest(%(x)s::float8[], %(y)s::float8[]) WITH ORDINALITY AS c(x, y, i),
     LATERAL ST_Transform(ST_SetSRID(ST_MakePoint(c.x, c.y), 3857), 4326) AS p
ORDER BY c.i
"""


def _mercator_boxes(envelopes: list[tuple[float, float, float, float]]) -> list[tuple[float, float, float, float]]:
    """(west, south, east, north) boxes in degrees as (xmin, xmax, ymin, ymax) in Web Mercator, the corners
    transformed as the stored points were (Mercator keeps lon / lat order, so a point is inside either both or
    neither, up to rounding on the edge)."""
    columns = dict(zip(("west", "south", "east", "north"), zip(*envelopes, strict=True), strict=True))
    with connection.cursor() as cursor:
        cursor.execute(_MERCATOR_CORNERS_SQL, {name: list(values) for name, values in columns.items()})
        return [tuple(row) for row in cursor.fetchall()]


def _lon_lat(x: np.ndarray, y: np.ndarray) -> list[tuple[float, float]]:
    with connection.cursor() as cursor:
        cursor.execute(_LON_LAT_SQL, {"x": x.tolist(), "y": y.tolist()})
        return cursor.fetchall()


def _covering_ranges(boxes: list[tuple[float, float, float, float]], level: int) -> tuple[list[int], list[int]]:
    """The union of the boxes' key ranges, as disjoint ranges of whole cells at `level` (or coarser)."""
    pairs = sorted(pair for box in boxes for pair in zip(*box_key_ranges(box, max_level=level), strict=True))
    lows: list[int] = []
    highs: list[int] = []
    for low, high in pairs:
        if lows and low <= highs[-1] + 1:
            highs[-1] = max(highs[-1], high)
        else:
            lows.append(low)
            highs.append(high)
    return lows, highs


def _attribute_stats(cells: dict[str, np.ndarray], i: int, slot: str, decimals: int) -> dict[str, float | None]:
    """min / avg / max of one attribute in cell i, as the features' SQL path gives them: the average is the
    exact decimal quotient (as numeric avg) before it becomes a float and is rounded."""
    valid = int(cells[f"valid_{slot}"][i])
    if not valid:
        return {"min": None, "avg": None, "max": None}
    average = Decimal(int(cells[f"scaled_{slot}"][i])).scaleb(-decimals) / valid
    return {
        "min": round(float(cells[f"min_{slot}"][i]), 4),
        "avg": round(float(average), 4),
        "max": round(float(cells[f"max_{slot}"][i]), 4),
    }


def viewport_clusters_from_columns(
    layer: Layer,
    envelopes: list[tuple[float, float, float, float]],
    level: int,
    conditions: tuple[Condition, ...],
    attributes: list[str],
) -> list[dict[str, Any]] | None:
    """The viewport API's clusters (cells of `level`) from the point columns, as apps/layers/aggregates.py
    computes them from the features, or None when the columns cannot answer (no current snapshot, a filter
    or a numeric attribute they do not hold, cells finer than the key grid)."""
    state = current_point_table(layer) if level <= KEY_ZOOM else None
    snapshot = open_point_columns(layer.pk, state.points_data_version) if state else None
    if snapshot is None:
        return None
    predicates = _predicates(snapshot, conditions)
    mappings = [snapshot.columns.get(name, {}) for name in attributes]
    if predicates is None or any(m.get("slot") not in snapshot.sum_decimals for m in mappings):
        return None
    reductions = {"sum_x": ("x", "sum"), "sum_y": ("y", "sum")}
    for m in mappings:
        slot = m["slot"]
        reductions |= {
            f"min_{slot}": (slot, "nanmin"),
            f"max_{slot}": (slot, "nanmax"),
            f"scaled_{slot}": (f"s{slot}", "sum"),
            f"valid_{slot}": (slot, "valid"),
        }
    boxes = _mercator_boxes(envelopes)
    cells = _grouped(snapshot, (*_covering_ranges(boxes, level), 2 * (KEY_ZOOM - level)), boxes, predicates, reductions)
    counts = cells["count"].astype(np.int64)
    centroids = _lon_lat(cells["sum_x"] / np.maximum(counts, 1), cells["sum_y"] / np.maximum(counts, 1))
    clusters = []
    for i, count in enumerate(counts.tolist()):
        lon, lat = centroids[i]
        stats = {
            name: _attribute_stats(cells, i, m["slot"], snapshot.sum_decimals[m["slot"]])
            for name, m in zip(attributes, mappings, strict=True)
        }
        clusters.append({"count": count, "centroid": [round(lon, 7), round(lat, 7)], "stats": stats})
    clusters.sort(key=lambda cluster: -cluster["count"])
    return clusters
