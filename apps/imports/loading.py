"""Staging → layers_feature in SQL: check the range, repair, count, infer the schema, load in one statement.

The staging table (ogr2ogr's output) and the prepared table are unlogged scratch
tables named after the job, so a retry of the same job drops what a killed
attempt left. Nothing touches `layers_feature` until `features_load`, which runs
inside the caller's transaction: the layer shows all of the file or none of it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.db import connection, transaction

from apps.imports.errors import ImportRefused
from apps.imports.gdal import FID_COLUMN, GEOMETRY_COLUMN
from apps.layers import storage
from apps.layers.models import GeometryType
from apps.layers.schema import MAX_PROPERTIES, NAME_PATTERN, AttributeType

FAMILY_CODE = {GeometryType.POINT: 1, GeometryType.LINE: 2, GeometryType.POLYGON: 3, GeometryType.MIXED: 0}
_FAMILY_BY_DIMENSION = {0: GeometryType.POINT, 1: GeometryType.LINE, 2: GeometryType.POLYGON}
_INTEGER_TYPES = ("smallint", "integer", "bigint")
_NUMBER_TYPES = ("real", "double precision", "numeric")
_WIDENING = {("number", "integer"), ("string", "date"), ("string", "datetime"), ("datetime", "date")}


@dataclass(frozen=True)
class StagingTables:
    """The job's scratch tables. Names derive from the job id only: plain identifiers, no user input."""

    staging: str
    prepared: str

    @classmethod
    def for_job(cls, job_id: UUID, part: int = 0) -> StagingTables:
        """`part`: the source layer's index in a multi-layer import (0 keeps the single-layer names)."""
        suffix = f"_{int(part)}" if part else ""
        return cls(staging=f"import_stage_{job_id.hex}{suffix}", prepared=f"import_prep_{job_id.hex}{suffix}")

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.staging}, {self.prepared}")


def quote_identifier(name: str) -> str:
    """A column name from the file, as a SQL identifier (double quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


# --- what was read --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    attribute_type: AttributeType


def _attribute_type(sql_type: str) -> AttributeType:
    if sql_type.startswith(_INTEGER_TYPES):
        return "integer"
    if sql_type.startswith(_NUMBER_TYPES):
        return "number"
    if sql_type == "boolean":
        return "boolean"
    if sql_type == "date":
        return "date"
    if sql_type.startswith("timestamp"):
        return "datetime"
    return "string"


def staged_columns(tables: StagingTables) -> list[Column]:
    """The attribute columns ogr2ogr created, typed in the schema vocabulary (apps/layers/schema.py)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT attname, format_type(atttypid, atttypmod)
            FROM pg_attribute
            WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped AND attname NOT IN (%s, %s)
            ORDER BY attnum
            """,
            [tables.staging, GEOMETRY_COLUMN, FID_COLUMN],
        )
        columns = [Column(name, _attribute_type(sql_type)) for name, sql_type in cursor.fetchall()]
    if len(columns) > MAX_PROPERTIES:
        raise ImportRefused(f"The file has {len(columns)} attributes; at most {MAX_PROPERTIES} are supported.")
    for column in columns:
        if not NAME_PATTERN.match(column.name):
            raise ImportRefused(f"The attribute name {column.name!r} is not 1-100 printable characters.")
    return columns


@dataclass(frozen=True)
class StagedSummary:
    read: int
    out_of_range: int
    family: GeometryType  # inferred from the geometries present
    bbox: tuple[float, float, float, float] | None


# A full scan of the staging table (no index: it is read once); ST_XMin & co. use the cached bbox.
# The dimensions present come as a bit mask (bit d = some geometry of dimension d): unlike
# array_agg(DISTINCT …) it needs no sort of a million values.
_SUMMARY_SQL = """
SELECT count(*),
       count(*) FILTER (
           WHERE NOT (ST_XMin(g) >= -180 AND ST_XMax(g) <= 180 AND ST_YMin(g) >= -90 AND ST_YMax(g) <= 90)
       ),
       bit_or(1 << ST_Dimension(g)) FILTER (WHERE g IS NOT NULL AND NOT ST_IsEmpty(g)),
       ST_XMin(ST_Extent(g)), ST_YMin(ST_Extent(g)), ST_XMax(ST_Extent(g)), ST_YMax(ST_Extent(g))
FROM (SELECT {geom} AS g FROM {staging}) AS staged
"""


def staged_summary(tables: StagingTables) -> StagedSummary:
    with connection.cursor() as cursor:
        cursor.execute(_SUMMARY_SQL.format(geom=GEOMETRY_COLUMN, staging=tables.staging))
        read, out_of_range, dimension_bits, *box = cursor.fetchone()
    dimensions = [d for d in _FAMILY_BY_DIMENSION if (dimension_bits or 0) & (1 << d)]
    family = _FAMILY_BY_DIMENSION.get(dimensions[0], GeometryType.MIXED) if len(dimensions) == 1 else GeometryType.MIXED
    bbox = tuple(box) if box[0] is not None else None
    return StagedSummary(read=read, out_of_range=out_of_range, family=family, bbox=bbox)  # type: ignore[arg-type]


def refuse_out_of_range(summary: StagedSummary) -> None:
    """Data outside longitude ±180 / latitude ±90 after reprojection: almost always a wrong or missing CRS."""
    if summary.out_of_range and summary.bbox is not None:
        xmin, ymin, xmax, ymax = (f"{v:.6g}" for v in summary.bbox)
        raise ImportRefused(
            f"Coordinates out of range: is the CRS right? {summary.out_of_range} of {summary.read} features lie "
            f"outside longitude -180…180 / latitude -90…90 after reprojection to WGS 84 (extent {xmin}, {ymin}, "
            f"{xmax}, {ymax}). If the coordinates are projected, send srid with the file's EPSG code."
        )


# --- repair -----------------------------------------------------------------------------------------


def _value_sql(column: Column) -> str:
    quoted = quote_identifier(column.name)
    if column.attribute_type == "number":
        return f"CASE WHEN {quoted}::double precision IN ('NaN', 'Infinity', '-Infinity') THEN NULL ELSE {quoted} END"
    if column.attribute_type in ("integer", "boolean", "date", "datetime"):
        return quoted
    return f"NULLIF({quoted}::text, '')"


def _properties_sql(columns: list[Column]) -> tuple[str, list[str]]:
    """`jsonb_build_object(name, value, …)` in chunks of 50 pairs (PostgreSQL's 100-argument limit), names bound."""
    if not columns:
        return "'{}'::jsonb", []
    chunks = [columns[i : i + 50] for i in range(0, len(columns), 50)]
    parts = ["jsonb_build_object(" + ", ".join(f"%s::text, {_value_sql(c)}" for c in chunk) + ")" for chunk in chunks]
    return "jsonb_strip_nulls(" + " || ".join(parts) + ")", [c.name for c in columns]


# ST_MakeValid only where ST_IsValid says so; ST_CollectionExtract keeps the layer's family
# (0 = mixed keeps everything). A single part wrapped in a Multi by the repair is unwrapped.
# With an upsert key, the key attribute's text becomes external_id; rows without one are skipped.
_PREPARE_SQL = """
CREATE UNLOGGED TABLE {prepared} AS
WITH source AS (
    SELECT {fid} AS source_order, {properties} AS properties, {geom} AS src, ST_IsValid({geom}) AS valid
    FROM {staging}
), keyed AS (
    SELECT *, properties ->> %s::text AS external_id FROM source
), repaired AS (
    SELECT source_order, properties, external_id, src, valid,
           CASE WHEN %s = 0 THEN fixed ELSE ST_CollectionExtract(fixed, %s) END AS kept
    FROM (SELECT *, CASE WHEN valid THEN src ELSE ST_MakeValid(src) END AS fixed FROM keyed) AS checked
)
SELECT source_order, properties, external_id,
       CASE WHEN src IS NULL THEN 'no geometry'
            WHEN ST_IsEmpty(src) THEN 'empty geometry'
            WHEN kept IS NULL OR ST_IsEmpty(kept) THEN
                 CASE WHEN valid THEN %s ELSE 'invalid, nothing left after repair' END
            WHEN %s::text IS NOT NULL AND external_id IS NULL THEN %s
            WHEN length(external_id) > 255 THEN 'key longer than 255 characters'
       END AS skip_reason,
       coalesce(NOT valid, false) AS repaired,
       CASE WHEN GeometryType(src) NOT LIKE 'MULTI%%' AND ST_NumGeometries(kept) = 1
            THEN ST_GeometryN(kept, 1) ELSE kept END AS geom
FROM repaired
"""

_COUNTS_SQL = """
SELECT skip_reason, count(*), count(*) FILTER (WHERE repaired) FROM {prepared} GROUP BY skip_reason
"""


@dataclass
class RepairCounts:
    imported: int = 0
    repaired: int = 0
    skipped: dict[str, int] = field(default_factory=dict)


def features_prepare(
    tables: StagingTables, *, columns: list[Column], family: GeometryType, key: str | None = None
) -> RepairCounts:
    """Repair every staged geometry to the layer's family, build properties, count per reason.

    With `key` (an upsert), each row's external_id is that attribute's value as text.
    """
    properties, names = _properties_sql(columns)
    sql = _PREPARE_SQL.format(
        prepared=tables.prepared,
        staging=tables.staging,
        geom=quote_identifier(GEOMETRY_COLUMN),
        fid=quote_identifier(FID_COLUMN),
        properties=properties,
    )
    code = FAMILY_CODE[family]
    counts = RepairCounts()
    with transaction.atomic(), connection.cursor() as cursor:
        # PostGIS's function costs make the planner JIT-compile this statement, which costs more
        # than it saves on one pass (0.89 s -> 0.67 s for 200k rows without it).
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(f"DROP TABLE IF EXISTS {tables.prepared}")
        not_family = f"not a {GeometryType(family).value} geometry"
        cursor.execute(sql, [*names, key, code, code, not_family, key, f"no value for the key {key!r}"])
        cursor.execute(_COUNTS_SQL.format(prepared=tables.prepared))
        for reason, total, repaired in cursor.fetchall():
            if reason is None:
                counts.imported, counts.repaired = total, repaired
            else:
                counts.skipped[reason] = total
    return counts


# --- schema -------------------------------------------------------------------------------------------


def schema_of(columns: list[Column]) -> dict[str, str]:
    return {column.name: column.attribute_type for column in columns}


def schema_merged(current: dict[str, str], incoming: dict[str, str]) -> dict[str, str]:
    """The layer's schema extended with the file's; a contradiction is refused (same rules as feature writes)."""
    merged = dict(current)
    for name, found in incoming.items():
        expected = merged.get(name)
        if expected is None or (expected, found) == ("integer", "number"):
            merged[name] = found
        elif expected != found and (expected, found) not in _WIDENING:
            raise ImportRefused(f"The attribute {name!r} is {found} in the file but {expected} in the layer.")
    return merged


# --- load ---------------------------------------------------------------------------------------------

# One INSERT … SELECT: PostgreSQL moves the rows in bulk and they commit with the job's success.
# Ids follow the file's order (exports and feature lists read like the file), while the rows are
# written sorted by geom, along PostGIS's space-filling curve, so neighbours share heap pages: a
# low-zoom tile then reads a few hundred pages instead of one page per point (4x faster).
# The sequence is looked up once per statement (an InitPlan), not once per row: nextval() given
# pg_get_serial_sequence()'s text resolves the name in the catalog for every row (6.1 s of 1M rows; 0.6 s).
# The target is layers_feature (the row goes to its layer's bucket), or a new layer's own table.
_FEATURE_ID_SEQUENCE = "pg_get_serial_sequence('layers_feature', 'id')::regclass"

_INSERT_SQL = """
INSERT INTO {target}
    (id, bucket, workspace_id, layer_id, geom, properties, external_id, version,
     created_by_id, updated_by_id, created_at, updated_at)
SELECT numbered.id, %s, %s, %s, numbered.geom, numbered.properties, NULL, 1, %s, %s, now(), now()
FROM (
    SELECT nextval((SELECT {sequence})) AS id, in_file_order.*
    FROM (SELECT * FROM {prepared} WHERE skip_reason IS NULL ORDER BY source_order) AS in_file_order
) AS numbered
ORDER BY numbered.geom
"""

# Uses feature_layer_id_idx (layer_id, id) of the layer's partition only (bucket prunes the others).
_DELETE_SQL = "DELETE FROM layers_feature WHERE layer_id = %s AND workspace_id = %s AND bucket = %s"

# A comment pinned to a feature that goes stays on its map or layer, unpinned (the discussion
# outlives the data; the ORM's SET_NULL does the same for one feature). Comments are few: the
# join starts from them and probes the features' primary key.
_UNANCHOR_COMMENTS_SQL = """
UPDATE comments_comment c SET feature_id = NULL
FROM layers_feature f
WHERE c.workspace_id = %(workspace)s AND c.feature_id = f.id AND f.layer_id = %(layer)s AND f.bucket = %(bucket)s
  {and_feature_is}
RETURNING c.id
"""


def _unpin_comments(cursor: Any, params: dict[str, Any], *, and_feature_is: str = "") -> tuple[str, ...]:
    """Unpin the comments on the features about to go; their ids, for the import's live event."""
    cursor.execute(_UNANCHOR_COMMENTS_SQL.format(and_feature_is=and_feature_is), params)
    return tuple(sorted(str(row[0]) for row in cursor.fetchall()))


@dataclass(frozen=True)
class LoadCounts:
    inserted: int
    unpinned_comments: tuple[str, ...] = ()


# Count and extent from the rows themselves (feature_layer_id_idx), so they cannot drift from
# what is stored; the data_version bump invalidates every cached tile of the layer.
_REFRESH_LAYER_SQL = """
WITH loaded AS (
    SELECT count(*) AS n, ST_Extent(geom) AS box FROM {table}
    WHERE layer_id = %(layer)s AND bucket = %(bucket)s
)
UPDATE layers_layer SET
    feature_count = loaded.n,
    extent = CASE WHEN loaded.box IS NULL THEN NULL ELSE ST_MakeEnvelope(
        ST_XMin(loaded.box), ST_YMin(loaded.box),
        greatest(ST_XMax(loaded.box), ST_XMin(loaded.box) + 1e-7),
        greatest(ST_YMax(loaded.box), ST_YMin(loaded.box) + 1e-7), 4326) END,
    attribute_schema = %(schema)s::jsonb,
    geometry_type = %(family)s,
    data_version = data_version + 1,
    updated_at = now()
FROM loaded
WHERE id = %(layer)s AND workspace_id = %(workspace)s
RETURNING data_version
"""


# The bulk INSERT sorts a million rows (ORDER BY source_order, then geom) and feeds the index
# builds; at the default 4MB those sorts spilled to disk. LOCAL: it ends with the import's transaction.
_LOAD_WORK_MEM_SQL = "SET LOCAL work_mem = '128MB'"


def features_load(
    tables: StagingTables, *, layer_id: UUID, workspace_id: UUID, bucket: int, user_id: int | None,
    replace: bool, schema: dict[str, str], family: str, new_partition: bool = False,
) -> LoadCounts:  # fmt: skip
    """Move the prepared rows into the layer (after deleting its old ones when replacing); refresh the layer.

    `bucket` is the layer's storage_bucket. With `new_partition` (a new layer with a bucket of its
    own) the rows go into a new table, indexed and attached as the bucket's partition afterwards.
    Must run inside the caller's transaction, with the layer row locked.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("features_load must run inside the import's transaction")
    params: dict[str, Any] = {"layer": layer_id, "workspace": workspace_id, "bucket": bucket, "family": family}
    unpinned: tuple[str, ...] = ()
    with connection.cursor() as cursor:
        cursor.execute(_LOAD_WORK_MEM_SQL)
        if replace:
            unpinned = _unpin_comments(cursor, params)
            cursor.execute(_DELETE_SQL, [layer_id, workspace_id, bucket])
        target = storage.partition_create(bucket) if new_partition else storage.PARENT
        insert = _INSERT_SQL.format(target=target, prepared=tables.prepared, sequence=_FEATURE_ID_SEQUENCE)
        cursor.execute(insert, [bucket, workspace_id, layer_id, user_id, user_id])
        inserted = cursor.rowcount
        # Counted from the new table before it is attached: the attach ends the transaction's work
        # while it holds its lock on layers_layer (apps/layers/storage.py).
        cursor.execute(_REFRESH_LAYER_SQL.format(table=target), {**params, "schema": json.dumps(schema)})
        if new_partition:
            storage.partition_attach(bucket)
    return LoadCounts(inserted=inserted, unpinned_comments=unpinned)


# --- upsert -------------------------------------------------------------------------------------------

_DUPLICATE_KEYS_SQL = """
SELECT external_id, count(*) FROM {prepared} WHERE skip_reason IS NULL
GROUP BY external_id HAVING count(*) > 1 ORDER BY count(*) DESC, external_id LIMIT 3
"""


def refuse_duplicate_keys(tables: StagingTables, *, key: str) -> None:
    """An upsert key must name one feature: two rows with one key would make the result depend on row order."""
    with connection.cursor() as cursor:
        cursor.execute(_DUPLICATE_KEYS_SQL.format(prepared=tables.prepared))
        duplicates = cursor.fetchall()
        if duplicates:
            examples = ", ".join(f"{value!r} ({count} times)" for value, count in duplicates)
            raise ImportRefused(f"The key {key!r} is not unique in the file: {examples}.")
        # The joins below look rows up by external_id.
        cursor.execute(f"CREATE INDEX ON {tables.prepared} (external_id)")
        cursor.execute(f"ANALYZE {tables.prepared}")


# Features loaded before the layer had a key (a first import as a new layer) get their
# external_id from the key attribute, where that value is unique and not taken yet.
# The window sorts the layer's keyless rows once; NOT EXISTS uses the (layer, external_id) index.
_ADOPT_SQL = """
WITH candidates AS (
    SELECT id, properties ->> %(key)s AS k, count(*) OVER (PARTITION BY properties ->> %(key)s) AS n
    FROM layers_feature
    WHERE layer_id = %(layer)s AND bucket = %(bucket)s AND external_id IS NULL AND properties ? %(key)s
)
UPDATE layers_feature f SET external_id = c.k
FROM candidates c
WHERE f.id = c.id AND f.bucket = %(bucket)s AND c.n = 1 AND length(c.k) <= 255
  AND NOT EXISTS (
      SELECT 1 FROM layers_feature o WHERE o.layer_id = %(layer)s AND o.bucket = %(bucket)s AND o.external_id = c.k
  )
"""

# Changed rows only: same key, different properties or geometry (exact, vertex by vertex).
# The join uses feature_external_id_unique_per_layer (layer_id, external_id, bucket).
_UPDATE_CHANGED_SQL = """
UPDATE layers_feature f
SET geom = p.geom, properties = p.properties, version = f.version + 1, updated_by_id = %(user)s,
    updated_at = now()
FROM {prepared} p
WHERE p.skip_reason IS NULL AND f.layer_id = %(layer)s AND f.bucket = %(bucket)s AND f.external_id IS NOT NULL
  AND f.external_id = p.external_id
  AND (f.properties IS DISTINCT FROM p.properties OR NOT ST_OrderingEquals(f.geom, p.geom))
"""

# New keys: ids in file order, rows in spatial order, as _INSERT_SQL.
_INSERT_NEW_SQL = """
INSERT INTO layers_feature
    (id, bucket, workspace_id, layer_id, geom, properties, external_id, version,
     created_by_id, updated_by_id, created_at, updated_at)
SELECT p.id, %(bucket)s, %(workspace)s, %(layer)s, p.geom, p.properties, p.external_id, 1, %(user)s, %(user)s,
       now(), now()
FROM (
    SELECT nextval((SELECT {sequence})) AS id, new_rows.*
    FROM (
        SELECT * FROM {prepared} n
        WHERE n.skip_reason IS NULL
          AND NOT EXISTS (
              SELECT 1 FROM layers_feature f
              WHERE f.layer_id = %(layer)s AND f.bucket = %(bucket)s AND f.external_id = n.external_id
          )
        ORDER BY n.source_order
    ) AS new_rows
) AS p
ORDER BY p.geom
"""

# "Missing" means the key is not in the file at all: a row the file names but could not load
# (say, a broken geometry) keeps its feature. Keyless features are not in the file either.
_MISSING_FROM_FILE = (
    "AND (f.external_id IS NULL OR NOT EXISTS (SELECT 1 FROM {prepared} p WHERE p.external_id = f.external_id))"
)
_DELETE_MISSING_SQL = """
DELETE FROM layers_feature f
WHERE f.layer_id = %(layer)s AND f.workspace_id = %(workspace)s AND f.bucket = %(bucket)s {missing}
"""


_LOADED_SQL = "SELECT count(*) FROM {prepared} WHERE skip_reason IS NULL"


@dataclass(frozen=True)
class UpsertCounts:
    inserted: int
    updated: int
    unchanged: int
    deleted: int
    unpinned_comments: tuple[str, ...] = ()


def features_upsert(
    tables: StagingTables, *, layer_id: UUID, workspace_id: UUID, bucket: int, user_id: int | None, key: str,
    delete_missing: bool, schema: dict[str, str], family: str,
) -> UpsertCounts:  # fmt: skip
    """Match the prepared rows to the layer's features by external_id: insert new, update changed
    (bumping `version`), leave the same untouched, optionally delete the ones the file lacks.

    Must run inside the caller's transaction, with the layer row locked (no concurrent upsert).
    """
    if not connection.in_atomic_block:
        raise RuntimeError("features_upsert must run inside the import's transaction")
    params: dict[str, Any] = {
        "layer": layer_id, "workspace": workspace_id, "bucket": bucket, "user": user_id, "key": key,
    }  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(_LOAD_WORK_MEM_SQL)
        cursor.execute(_ADOPT_SQL, params)
        cursor.execute(_UPDATE_CHANGED_SQL.format(prepared=tables.prepared), params)
        updated = cursor.rowcount
        insert = _INSERT_NEW_SQL.format(prepared=tables.prepared, sequence=_FEATURE_ID_SEQUENCE)
        cursor.execute(insert, params)
        inserted = cursor.rowcount
        deleted, unpinned = 0, ()
        if delete_missing:
            missing = _MISSING_FROM_FILE.format(prepared=tables.prepared)
            unpinned = _unpin_comments(cursor, params, and_feature_is=missing)
            cursor.execute(_DELETE_MISSING_SQL.format(missing=missing), params)
            deleted = cursor.rowcount
        cursor.execute(_LOADED_SQL.format(prepared=tables.prepared))
        loaded = cursor.fetchone()[0]
        refresh = {**params, "family": family, "schema": json.dumps(schema)}
        cursor.execute(_REFRESH_LAYER_SQL.format(table=storage.PARENT), refresh)
    unchanged = loaded - inserted - updated
    return UpsertCounts(
        inserted=inserted, updated=updated, unchanged=unchanged, deleted=deleted, unpinned_comments=unpinned
    )


_PLAIN = re.compile(r"^import_(stage|prep)_[0-9a-f]{32}(_[0-9]+)?$")


def job_tables_drop(job_id: UUID) -> None:
    """Drop every scratch table of the job, however many layers an attempt (maybe a killed one) staged."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE %s OR tablename LIKE %s",
            [f"import\\_stage\\_{job_id.hex}%", f"import\\_prep\\_{job_id.hex}%"],
        )
        names = [name for (name,) in cursor.fetchall() if _PLAIN.match(name)]
        if names:
            cursor.execute(f"DROP TABLE IF EXISTS {', '.join(names)}")


def staging_tables_left() -> list[str]:
    """Scratch tables of imports still in the database, and bucket tables no layer holds
    (tests; an operator's check)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'import\\_%%'")
        scratch = [name for (name,) in cursor.fetchall() if _PLAIN.match(name)]
    return scratch + storage.stray_partition_tables()
