"""Geometry input at the edges: GeoJSON in, validated 4326 GEOS geometry out.

User input never reaches GDAL as an SRS string or a path: coordinates are
parsed by GEOS from GeoJSON, which is always WGS 84 (RFC 7946).
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.gis.gdal import GDALException
from django.contrib.gis.geos import GEOSException, GEOSGeometry

from apps.core.errors import ApplicationError

FAMILIES = {
    "Point": "point",
    "MultiPoint": "point",
    "LineString": "line",
    "MultiLineString": "line",
    "Polygon": "polygon",
    "MultiPolygon": "polygon",
}
MAX_VERTICES = 500_000  # larger shapes go through imports, which stream


def parse_geojson_geometry(value: Any, *, field: str = "geometry", family: str = "mixed") -> GEOSGeometry:
    """Parse and validate one GeoJSON geometry; every refusal names `field` and the reason."""
    if not isinstance(value, dict) or "type" not in value:
        raise ApplicationError("Must be a GeoJSON geometry object with a 'type'.", field=field)
    geometry_type = value["type"]
    if geometry_type not in FAMILIES and geometry_type != "GeometryCollection":
        raise ApplicationError(f"Unknown geometry type {geometry_type!r}.", field=field)
    try:
        geometry = GEOSGeometry(json.dumps(value), srid=4326)
    except (GEOSException, GDALException, ValueError, TypeError) as exc:
        raise ApplicationError(f"Not a valid GeoJSON geometry ({exc}).", field=field) from None
    return validate_geometry(geometry, field=field, family=family)


def validate_geometry(geometry: GEOSGeometry, *, field: str, family: str = "mixed") -> GEOSGeometry:
    """Family, emptiness, size, WGS 84 range and validity; the error names `field`."""
    if family != "mixed" and FAMILIES.get(geometry.geom_type) != family:
        raise ApplicationError(f"Expected {family} geometry, not {geometry.geom_type}.", field=field)
    if geometry.empty:
        raise ApplicationError("The geometry is empty.", field=field)
    if geometry.num_coords > MAX_VERTICES:
        raise ApplicationError(f"More than {MAX_VERTICES} vertices; import the file instead.", field=field)
    xmin, ymin, xmax, ymax = geometry.extent
    if xmin < -180 or xmax > 180 or ymin < -90 or ymax > 90:
        raise ApplicationError(
            "Coordinates out of range for WGS 84 (longitude -180…180, latitude -90…90); "
            "GeoJSON coordinates are [longitude, latitude].",
            field=field,
        )
    if not geometry.valid:
        raise ApplicationError(f"Invalid geometry: {geometry.valid_reason}.", field=field)
    return geometry


def parse_bbox(raw: str, *, field: str = "bbox") -> tuple[float, float, float, float]:
    """`west,south,east,north` in degrees."""
    parts = raw.split(",")
    if len(parts) != 4:
        raise ApplicationError("Expected west,south,east,north.", field=field)
    try:
        west, south, east, north = (float(p) for p in parts)
    except ValueError:
        raise ApplicationError("Expected four numbers: west,south,east,north.", field=field) from None
    if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= 90 and -90 <= north <= 90):
        raise ApplicationError("Out of range: longitudes -180…180, latitudes -90…90.", field=field)
    if south >= north:
        raise ApplicationError("south must be less than north.", field=field)
    return west, south, east, north
