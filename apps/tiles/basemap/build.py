"""Build the offline OpenMapTiles basemap: stage the sources in PostGIS, render tiles, write MBTiles.

World tiles (every tile of z0…`world_maxzoom`) come from Natural Earth and
GeoNames; above that only the tiles over the Helsinki extract are rendered, so
z14 costs a handful of tiles, not 2**28. Empty tiles are not stored (the
server answers 204 for them).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.db import connection

from apps.tiles.basemap import omt_tiles, openmaptiles, sources
from apps.tiles.basemap.mbtiles import MBTilesWriter, read_metadata, tile_counts
from apps.tiles.basemap.sources import SCHEMA, SourceFiles
from apps.tiles.tilegrid import MERCATOR_MAX_LAT, BBox, tile_bbox, tile_span

FINGERPRINT_KEY = "meridian:fingerprint"
MAX_ZOOM = 14  # OpenMapTiles' last zoom; MapLibre overzooms beyond it
WORLD_BOUNDS = (-180.0, -MERCATOR_MAX_LAT, 180.0, MERCATOR_MAX_LAT)
CENTER_ZOOM = 13
ATTRIBUTION = (
    '<a href="https://www.openstreetmap.org/copyright">© OpenStreetMap contributors</a>, '
    '<a href="https://www.naturalearthdata.com/">Natural Earth</a>, <a href="https://www.geonames.org/">GeoNames</a>'
)
# pg_try_advisory_lock key: one build per database at a time (they share the `basemap` schema).
_LOCK_KEY = 7_461_002

Log = Callable[[str], None]


class BasemapBuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class BuildOptions:
    output: Path
    minzoom: int = 0
    maxzoom: int = MAX_ZOOM
    world_maxzoom: int = 6
    force: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.minzoom <= self.maxzoom <= MAX_ZOOM:
            raise BasemapBuildError(f"need 0 <= minzoom <= maxzoom <= {MAX_ZOOM}")
        if self.world_maxzoom < 0:
            raise BasemapBuildError("world_maxzoom must be 0 or more")

    def fingerprinted(self) -> dict[str, int]:
        return {"minzoom": self.minzoom, "maxzoom": self.maxzoom, "world_maxzoom": self.world_maxzoom}


@dataclass
class BuildResult:
    built: bool
    path: Path
    tiles_per_zoom: dict[int, int] = field(default_factory=dict)
    empty_tiles: int = 0
    file_bytes: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def tiles(self) -> int:
        return sum(self.tiles_per_zoom.values())


# --- tile ranges -----------------------------------------------------------------------------------


def tile_range(z: int, bbox: BBox) -> Iterator[tuple[int, int]]:
    """XYZ (x, y) of the tiles at zoom z that cover a lon/lat bbox."""
    x0, y0, x1, y1 = tile_span(bbox, z)
    for x in range(x0, x1 + 1):
        for y in range(y0, y1 + 1):
            yield x, y


def tiles_for(z: int, *, options: BuildOptions, extent: BBox) -> list[tuple[int, int]]:
    if z <= options.world_maxzoom:
        return [(x, y) for x in range(1 << z) for y in range(1 << z)]
    return list(tile_range(z, extent))


def detail_area(options: BuildOptions, extent: BBox) -> BBox:
    """The lon/lat box the street-level tiles cover: the extract's tiles at the first non-world zoom."""
    z = min(options.world_maxzoom + 1, MAX_ZOOM)
    boxes = [tile_bbox(z, x, y) for x, y in tile_range(z, extent)]
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


# --- the database side ----------------------------------------------------------------------------


def _execute(statements: list[openmaptiles.Statement]) -> None:
    with connection.cursor() as cursor:
        for statement, params in statements:
            cursor.execute(statement, params)


def _osm_extent() -> BBox:
    sql = f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e FROM {SCHEMA}.points) AS s"  # noqa: S608, E501 -- the constant schema name
    with connection.cursor() as cursor:
        cursor.execute(sql)
        row = cursor.fetchone()
    if row is None or row[0] is None:
        raise BasemapBuildError("the OSM extract loaded no points")
    return row[0], row[1], row[2], row[3]


def _render_tiles(options: BuildOptions, extent: BBox, writer: MBTilesWriter, log: Log) -> tuple[dict[int, int], int]:
    per_zoom: dict[int, int] = {}
    empty = 0
    margin = openmaptiles.BUFFER / openmaptiles.EXTENT
    with connection.cursor() as cursor:
        for z in range(options.minzoom, options.maxzoom + 1):
            sql = omt_tiles.tile_sql(z)
            started = time.monotonic()
            written = 0
            for x, y in tiles_for(z, options=options, extent=extent):
                cursor.execute(sql, {"z": z, "x": x, "y": y, "margin": margin})
                mvt = bytes(cursor.fetchone()[0] or b"")
                if not mvt:
                    empty += 1
                    continue
                writer.add_tile(z, x, y, mvt)
                written += 1
            per_zoom[z] = written
            log(f"  z{z}: {written} tiles in {time.monotonic() - started:.1f}s")
    return per_zoom, empty


def _metadata(options: BuildOptions, extent: BBox, fingerprint: str) -> dict[str, str]:
    bounds = WORLD_BOUNDS if options.minzoom <= options.world_maxzoom else extent
    center_lon, center_lat = (extent[0] + extent[2]) / 2, (extent[1] + extent[3]) / 2
    layers = omt_tiles.vector_layers(minzoom=options.minzoom, maxzoom=options.maxzoom)
    return {
        "name": "Meridian basemap",
        "description": (
            "OpenMapTiles-schema basemap: Natural Earth and GeoNames worldwide, OpenStreetMap in central Helsinki."
        ),
        "attribution": ATTRIBUTION,
        "type": "baselayer",
        "version": "1",
        "format": "pbf",
        "minzoom": str(options.minzoom),
        "maxzoom": str(options.maxzoom),
        "bounds": ",".join(f"{value:.6f}" for value in bounds),
        "center": f"{center_lon:.6f},{center_lat:.6f},{min(CENTER_ZOOM, options.maxzoom)}",
        "json": json.dumps({"vector_layers": layers}),
        "generator": "meridian manage.py build_basemap",
        FINGERPRINT_KEY: fingerprint,
    }


class _Lock:
    def __enter__(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [_LOCK_KEY])
            if not cursor.fetchone()[0]:
                raise BasemapBuildError("another basemap build is running on this database")

    def __exit__(self, *exc: object) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])


# --- the build ------------------------------------------------------------------------------------


def basemap_build(options: BuildOptions, *, log: Log = print) -> BuildResult:
    """Build the MBTiles at `options.output` unless it is already built from the same sources.

    Runs outside any transaction: ogr2ogr stages the sources through its own
    connections, and the scratch schema is dropped (committed) even on failure.
    The file appears atomically (see MBTilesWriter).
    """
    if connection.in_atomic_block:
        raise BasemapBuildError("basemap_build must run outside a transaction (ogr2ogr uses its own connection)")
    started = time.monotonic()
    files = SourceFiles.find()
    fingerprint = sources.fingerprint(files.all(), options=options.fingerprinted())
    if not options.force and read_metadata(options.output).get(FINGERPRINT_KEY) == fingerprint:
        return BuildResult(built=False, path=options.output, tiles_per_zoom=tile_counts(options.output))
    result = BuildResult(built=True, path=options.output)
    with _Lock():
        try:
            _build(options, files, fingerprint, result, log)
        finally:
            _execute([(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE", None)])
    result.file_bytes = options.output.stat().st_size
    result.seconds = time.monotonic() - started
    return result


def _phase(result: BuildResult, name: str, since: float) -> float:
    now = time.monotonic()
    result.timings[name] = round(now - since, 2)
    return now


def _build(options: BuildOptions, files: SourceFiles, fingerprint: str, result: BuildResult, log: Log) -> None:
    mark = time.monotonic()
    _execute([(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE", None), (f"CREATE SCHEMA {SCHEMA}", None)])
    with tempfile.TemporaryDirectory(prefix="meridian-basemap-") as tmp:
        sources.load_natural_earth(files, tmp=tmp)
        sources.load_osm(files, tmp=tmp)
    extent = _osm_extent()
    area = detail_area(options, extent)
    borders = sources.load_borders(files)
    cities = sources.load_places(files, near=area)
    mark = _phase(result, "load", mark)
    log(f"  sources loaded: {borders} border arcs, {cities} cities ({result.timings['load']}s)")
    _execute(openmaptiles.prepare_statements(world_maxzoom=options.world_maxzoom, detail_area=area))
    mark = _phase(result, "prepare", mark)
    log(f"  layer tables prepared ({result.timings['prepare']}s)")
    with MBTilesWriter(options.output) as writer:
        result.tiles_per_zoom, result.empty_tiles = _render_tiles(options, extent, writer, log)
        writer.set_metadata(_metadata(options, extent, fingerprint))
    _phase(result, "tiles", mark)


def describe(result: BuildResult) -> str:
    return json.dumps({**asdict(result), "path": str(result.path)}, indent=2)
