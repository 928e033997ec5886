"""Exports of a vector layer: GeoJSON, GeoPackage, zipped Shapefile, CSV, KML, MBTiles, PMTiles (DESIGN §9).

The layer's features (after the shared attribute filters and a bbox) are read with one
fixed SQL text chosen here; attribute names and filter values are bound parameters.
GeoJSON and CSV are written by Python from a server-side cursor (constant memory);
GeoPackage, Shapefile and KML by ogr2ogr reading that same SQL from PostGIS, its values
quoted by psycopg (client-side binding), since ogr2ogr's -sql takes no parameters.

Small exports answer the request; above `EXPORT_SYNC_MAX_FEATURES` they become a Job
on the imports queue (see tasks.py), which stores the file as the job's output.
MBTiles and PMTiles are always a job, on the tiling queue: apps/tiles/archives.py writes
them from the live tile renderer.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection
from django.utils.text import slugify

from apps.core.errors import ApplicationError
from apps.core.geometry import parse_bbox
from apps.core.ogr import pg_datasource
from apps.imports import gdal
from apps.imports.loading import quote_identifier
from apps.layers.filters import Condition, filters_where, parse_filters
from apps.layers.models import GeometryType, Layer, SourceType

DEFAULT_SYNC_MAX_FEATURES = 50_000
EXPORT_TIMEOUT_SECONDS = 50 * 60  # below the task's time limit
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
FETCH_ROWS = 2_000


class ExportFormat(StrEnum):
    GEOJSON = "geojson"
    GPKG = "gpkg"
    SHP = "shp"
    CSV = "csv"
    KML = "kml"
    MBTILES = "mbtiles"
    PMTILES = "pmtiles"


TILE_FORMATS = frozenset({ExportFormat.MBTILES, ExportFormat.PMTILES})
DEFAULT_MIN_ZOOM = 0
DEFAULT_MAX_ZOOM = 14
# Past z16 a tile is ~600 m wide at the equator: deeper archives are better served live.
MAX_EXPORT_ZOOM = 16
TILE_PARAMS = ("minzoom", "maxzoom")


@dataclass(frozen=True)
class FormatInfo:
    extension: str  # of the file the user downloads
    content_type: str
    driver: str | None = None  # ogr2ogr's output driver; None: written here


FORMATS: dict[ExportFormat, FormatInfo] = {
    ExportFormat.GEOJSON: FormatInfo("geojson", "application/geo+json"),
    ExportFormat.GPKG: FormatInfo("gpkg", "application/geopackage+sqlite3", "GPKG"),
    ExportFormat.SHP: FormatInfo("zip", "application/zip", "ESRI Shapefile"),
    ExportFormat.CSV: FormatInfo("csv", "text/csv; charset=utf-8"),
    ExportFormat.KML: FormatInfo("kml", "application/vnd.google-earth.kml+xml", "KML"),
    ExportFormat.MBTILES: FormatInfo("mbtiles", "application/vnd.sqlite3"),
    ExportFormat.PMTILES: FormatInfo("pmtiles", "application/vnd.pmtiles"),
}


def export_sync_max_features() -> int:
    return int(getattr(settings, "EXPORT_SYNC_MAX_FEATURES", DEFAULT_SYNC_MAX_FEATURES))


@dataclass(frozen=True)
class ExportQuery:
    """What to export: the format, a bbox and attribute filters, checked against the layer's schema."""

    export_format: ExportFormat
    bbox: tuple[float, float, float, float] | None = None
    conditions: tuple[Condition, ...] = ()
    # The raw filter parameters, kept so a background job can check them again when it runs.
    filters: dict[str, str] = field(default_factory=dict)
    # Tile archives only: the zoom levels to write, inclusive.
    zooms: tuple[int, int] = (DEFAULT_MIN_ZOOM, DEFAULT_MAX_ZOOM)

    @property
    def is_tile_archive(self) -> bool:
        return self.export_format in TILE_FORMATS


def _zoom(params: Mapping[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    if not raw.isdigit() or not 0 <= int(raw) <= MAX_EXPORT_ZOOM:
        raise ApplicationError(f"Expected a zoom level from 0 to {MAX_EXPORT_ZOOM}, got {raw!r}.", field=name)
    return int(raw)


def _zoom_range(params: Mapping[str, str], export_format: ExportFormat) -> tuple[int, int]:
    if export_format not in TILE_FORMATS:
        for name in TILE_PARAMS:
            if name in params:
                raise ApplicationError("Only the mbtiles and pmtiles formats take zoom levels.", field=name)
        return DEFAULT_MIN_ZOOM, DEFAULT_MAX_ZOOM
    minzoom = _zoom(params, "minzoom", DEFAULT_MIN_ZOOM)
    maxzoom = _zoom(params, "maxzoom", max(minzoom, DEFAULT_MAX_ZOOM))
    if minzoom > maxzoom:
        raise ApplicationError(f"minzoom ({minzoom}) is above maxzoom ({maxzoom}).", field="minzoom")
    return minzoom, maxzoom


def export_query(layer: Layer, params: Mapping[str, str]) -> ExportQuery:
    """Parse `format`, `bbox` and the attribute filters; a 400 naming the parameter for anything wrong."""
    if layer.source_type != SourceType.VECTOR:
        raise ApplicationError("Only vector layers hold features to export.")
    raw_format = params.get("format") or ExportFormat.GEOJSON.value
    if raw_format not in ExportFormat.__members__.values():
        raise ApplicationError(f"Use one of {', '.join(ExportFormat)}.", field="format")
    export_format = ExportFormat(raw_format)
    if export_format == ExportFormat.SHP and layer.geometry_type == GeometryType.MIXED:
        raise ApplicationError(
            "A Shapefile holds one geometry type and this layer mixes them; export GeoPackage or GeoJSON.",
            field="format",
        )
    zooms = _zoom_range(params, export_format)
    filters = {name: params[name] for name in params if name not in ("format", "bbox", "share_token", *TILE_PARAMS)}
    conditions = parse_filters(filters, layer.attribute_schema)
    bbox = parse_bbox(params["bbox"]) if params.get("bbox") else None
    return ExportQuery(export_format=export_format, bbox=bbox, conditions=conditions, filters=filters, zooms=zooms)


def export_file_name(layer: Layer, export_format: ExportFormat) -> str:
    return f"{slugify(layer.name)[:80] or 'layer'}.{FORMATS[export_format].extension}"


# --- the features -------------------------------------------------------------------------------

# Feature rows of one layer; the filters' fragments are fixed text from apps/layers/filters.py.
# Uses feature_layer_id_idx (layer_id, id): the rows come in id order without a sort.
_FEATURES_SQL = """
SELECT {columns}
FROM layers_feature f
WHERE f.layer_id = %s AND f.workspace_id = %s AND f.bucket = %s AND {bbox} AND {filters}
ORDER BY f.id
"""
_BBOX_SQL = "ST_Intersects(f.geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))"


def _features_sql(layer: Layer, query: ExportQuery, columns: str, column_params: list[Any]) -> tuple[str, list[Any]]:
    where, filter_params = filters_where(query.conditions, table="f")
    sql = _FEATURES_SQL.format(columns=columns, bbox=_BBOX_SQL if query.bbox else "TRUE", filters=where)
    return sql, [
        *column_params,
        layer.pk,
        layer.workspace_id,
        layer.storage_bucket,
        *(query.bbox or ()),
        *filter_params,
    ]


def export_count(layer: Layer, query: ExportQuery) -> int:
    sql, params = _features_sql(layer, query, "count(*)", [])
    with connection.cursor() as cursor:
        cursor.execute(sql.replace("ORDER BY f.id", ""), params)
        return int(cursor.fetchone()[0])


def export_extent(layer: Layer, query: ExportQuery) -> tuple[float, float, float, float] | None:
    """west, south, east, north of the features the query selects (degrees); None when it selects none."""
    columns = "min(ST_XMin(f.geom)), min(ST_YMin(f.geom)), max(ST_XMax(f.geom)), max(ST_YMax(f.geom))"
    sql, params = _features_sql(layer, query, columns, [])
    with connection.cursor() as cursor:
        cursor.execute(sql.replace("ORDER BY f.id", ""), params)
        row = cursor.fetchone()
    return None if row is None or row[0] is None else (row[0], row[1], row[2], row[3])


def _typed_column(attribute_type: str) -> str:
    """One attribute as a typed column: a stray value of another type becomes NULL instead of failing."""
    value = "(f.properties ->> %s)"
    kind = "jsonb_typeof(f.properties -> %s)"
    if attribute_type == "integer":
        return f"CASE WHEN {kind} = 'number' THEN round({value}::numeric)::bigint END"
    if attribute_type == "number":
        return f"CASE WHEN {kind} = 'number' THEN {value}::double precision END"
    if attribute_type == "boolean":
        return f"CASE WHEN {kind} = 'boolean' THEN {value}::boolean END"
    return f"{value}::text"  # strings, and ISO dates and times as text


def _free_name(taken: set[str], *candidates: str) -> str:
    for name in candidates:
        if name.lower() not in taken:
            return name
    return "_" + candidates[-1]


def _attribute_columns(layer: Layer) -> tuple[list[str], str, list[Any]]:
    """The schema's attributes as typed SQL columns (names bound, aliases quoted)."""
    names = list(layer.attribute_schema)
    parts: list[str] = []
    params: list[Any] = []
    for name in names:
        column = _typed_column(layer.attribute_schema[name])
        parts.append(f"{column} AS {quote_identifier(name)}")
        params.extend([name] * column.count("%s"))
    return names, ", ".join(parts), params


# --- writers --------------------------------------------------------------------------------------------


def _rows(sql: str, params: list[Any]) -> Iterator[tuple[Any, ...]]:
    """Rows from a server-side cursor, a batch at a time (constant memory on a large layer)."""
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(FETCH_ROWS):
            yield from batch


def _write_geojson(layer: Layer, query: ExportQuery, target: Path) -> int:
    # Geometry and properties leave PostgreSQL as JSON text and are written as they are.
    sql, params = _features_sql(layer, query, "f.id, ST_AsGeoJSON(f.geom, 7), f.properties::text", [])
    count = 0
    with target.open("w", encoding="utf-8") as out:
        out.write('{"type": "FeatureCollection", "features": [\n')
        for feature_id, geometry, properties in _rows(sql, params):
            out.write(",\n" if count else "")
            out.write(
                f'{{"type": "Feature", "id": {int(feature_id)}, "geometry": {geometry}, "properties": {properties}}}'
            )
            count += 1
        out.write("\n]}\n")
    return count


def csv_cell(value: Any) -> str:
    """A property as a CSV cell; text a spreadsheet would run as a formula gets a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value if value.startswith(FORMULA_PREFIXES) else value
    if isinstance(value, (dict, list)):
        return csv_cell(json.dumps(value, ensure_ascii=False))
    return str(value)  # numbers: a leading minus sign is a number, not a formula


def _write_csv(layer: Layer, query: ExportQuery, target: Path) -> int:
    names = list(layer.attribute_schema)
    geometry_name = _free_name({n.lower() for n in names}, "WKT", "geometry_wkt")
    sql, params = _features_sql(layer, query, "f.properties::text, ST_AsText(f.geom)", [])
    count = 0
    with target.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([csv_cell(name) for name in names] + [geometry_name])
        for properties, wkt in _rows(sql, params):
            values = json.loads(properties)
            writer.writerow([csv_cell(values.get(name)) for name in names] + [wkt])
            count += 1
    return count


def _literal_sql(sql: str, params: list[Any]) -> str:
    """The SQL with its parameters quoted in, by psycopg's own client-side binding (for ogr2ogr's -sql)."""
    connection.ensure_connection()
    raw = connection.connection
    assert raw is not None
    return psycopg.ClientCursor(raw).mogrify(sql, params)


def _ogr2ogr(layer: Layer, query: ExportQuery, target: Path, work: Path) -> None:
    info = FORMATS[query.export_format]
    assert info.driver is not None
    names, columns, column_params = _attribute_columns(layer)
    geometry_name = _free_name({n.lower() for n in names}, "geom", "geometry")
    sql, params = _features_sql(
        layer, query, f"{columns + ', ' if columns else ''}f.geom AS {geometry_name}", column_params
    )
    datasource, pg_env = pg_datasource("meridian export (ogr2ogr)")
    layer_name = slugify(layer.name)[:60] or "layer"
    geometry_type = _geometry_type_args(query.export_format, GeometryType(layer.geometry_type))
    options = ["-lco", "ENCODING=UTF-8"] if query.export_format == ExportFormat.SHP else []
    args = [
        gdal.tool_path("ogr2ogr"), "-f", info.driver, str(target), datasource,
        "-sql", _literal_sql(sql, params), "-nln", layer_name, "-a_srs", "EPSG:4326",
        *geometry_type, *options,
    ]  # fmt: skip
    env = {**gdal.gdal_env(driver=info.driver, tmp=work), **pg_env}
    result = subprocess.run(  # noqa: S603 -- an argument list, no shell; the SQL's values are quoted by psycopg
        args, env=env, capture_output=True, text=True, timeout=EXPORT_TIMEOUT_SECONDS, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"ogr2ogr failed ({result.returncode}): {result.stderr[-2000:]}")


def _geometry_type_args(export_format: ExportFormat, family: GeometryType) -> list[str]:
    """The output layer's geometry type (a -sql result has none): lines and polygons as Multi, so single
    and multi parts fit one layer; points as points, except in a Shapefile, typed by its first feature."""
    if export_format == ExportFormat.KML or family == GeometryType.MIXED:
        return []
    if family in (GeometryType.LINE, GeometryType.POLYGON):
        return ["-nlt", "PROMOTE_TO_MULTI"]
    return [] if export_format == ExportFormat.SHP else ["-nlt", "POINT"]


def _zip_shapefile(directory: Path, target: Path) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for part in sorted(directory.iterdir()):
            archive.write(part, part.name)


def export_write(layer: Layer, query: ExportQuery, work: Path) -> Path:
    """Write the export under `work` (a directory of ours, emptied by the caller) and return the file."""
    work.mkdir(parents=True, exist_ok=True)
    target = work / export_file_name(layer, query.export_format)
    if query.export_format == ExportFormat.GEOJSON:
        _write_geojson(layer, query, target)
    elif query.export_format == ExportFormat.CSV:
        _write_csv(layer, query, target)
    elif query.export_format == ExportFormat.SHP:
        parts = work / "shapefile"
        _ogr2ogr(layer, query, parts, work)
        _zip_shapefile(parts, target)
        shutil.rmtree(parts)
    else:
        _ogr2ogr(layer, query, target, work)
    return target
