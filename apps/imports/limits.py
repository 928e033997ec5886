"""Per-feature limits checked on the staging table, before validation and repair look at a geometry.

A single feature with a million vertices makes every tile that touches it, every edit
of it and every browser that draws it pay for all its vertices, and repairing one that
is invalid can take minutes; it is refused with its size, before validation and repair.
The check costs a header read per row (about 25 ms for a 1M-vertex polygon).
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection

from apps.imports.errors import ImportRefused
from apps.imports.gdal import GEOMETRY_COLUMN

DEFAULT_MAX_VERTICES_PER_FEATURE = 500_000
_BYTES_PER_XY_VERTEX = 16

# ST_MemSize reads the stored size without detoasting, so only geometries big enough to
# hold that many vertices are opened and counted; every other row costs a header read.
_OVERSIZED_SQL = """
SELECT count(*), max(n)
FROM (
    SELECT ST_NPoints({geom}) AS n FROM {staging} WHERE ST_MemSize({geom}) > %(min_bytes)s
) AS big
WHERE n > %(max_vertices)s
"""


def max_vertices_per_feature() -> int:
    return int(getattr(settings, "IMPORT_MAX_VERTICES_PER_FEATURE", DEFAULT_MAX_VERTICES_PER_FEATURE))


def refuse_oversized_features(staging_table: str) -> None:
    """Refuse the import when any staged geometry has more vertices than IMPORT_MAX_VERTICES_PER_FEATURE."""
    limit = max_vertices_per_feature()
    sql = _OVERSIZED_SQL.format(geom=GEOMETRY_COLUMN, staging=staging_table)
    with connection.cursor() as cursor:
        cursor.execute(sql, {"min_bytes": limit * _BYTES_PER_XY_VERTEX, "max_vertices": limit})
        count, largest = cursor.fetchone()
    if count:
        raise ImportRefused(
            f"{count} feature(s) have more than {limit} vertices (the largest has {largest}); "
            "simplify the geometry or split it before importing."
        )
