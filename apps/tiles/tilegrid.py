"""The XYZ tile grid in lon/lat terms: which tiles cover a box, and which box a tile covers.

One copy for the basemap build, the layer archives and anything else that walks tiles.
"""

from __future__ import annotations

import math

MERCATOR_MAX_LAT = 85.0511287798066  # the Web Mercator square's edge; tiles stop here
BBox = tuple[float, float, float, float]  # west, south, east, north in degrees


def _column(lon: float, n: int) -> int:
    return min(n - 1, max(0, math.floor((lon + 180) / 360 * n)))


def _row(lat: float, n: int) -> int:
    lat = max(-MERCATOR_MAX_LAT, min(MERCATOR_MAX_LAT, lat))
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return min(n - 1, max(0, math.floor(y)))


def tile_span(bbox: BBox, z: int) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 (inclusive, rows counted from the north) of the tiles covering `bbox` at zoom z."""
    west, south, east, north = bbox
    n = 1 << z
    return _column(west, n), _row(north, n), _column(east, n), _row(south, n)


def tile_bbox(z: int, x: int, y: int) -> BBox:
    """The lon/lat box of tile z/x/y."""
    n = 1 << z

    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y)
