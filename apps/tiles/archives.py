"""A layer's vector tiles as one file for offline use or a CDN: MBTiles 1.3 or PMTiles v3 (DESIGN §9).

Every tile comes from `render_tile`, the function behind the live tile endpoint, so an
archived z/x/y holds exactly the MVT the endpoint serves for it (clusters, simplification,
zoom rules and the size cap included). Only the tiles covering the selected features'
extent are visited, empty ones are left out, and tiles are stored gzip-compressed.

The archive is written under a `.partial` name and renamed when complete: a killed
worker leaves nothing that looks finished (and nothing the job points to).
"""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer as PMTilesWriter

from apps.core.errors import ApplicationError
from apps.imports.exports import ExportFormat, ExportQuery, export_extent, export_file_name
from apps.imports.progress import ProgressReporter
from apps.layers.models import Layer
from apps.tiles.mvt import LAYER_NAME, TileRequest, render_tile, tilejson_fields
from apps.tiles.tilegrid import MERCATOR_MAX_LAT, BBox, tile_span

DEFAULT_MAX_TILES = 100_000
GZIP_LEVEL = 6  # as the live endpoint


def max_tiles() -> int:
    return int(getattr(settings, "EXPORT_TILES_MAX_TILES", DEFAULT_MAX_TILES))


@dataclass(frozen=True)
class ArchivePlan:
    """Which tiles of which layer to write: checked against the limits before any is rendered."""

    layer: Layer
    query: ExportQuery
    bounds: BBox

    @property
    def zooms(self) -> range:
        return range(self.query.zooms[0], self.query.zooms[1] + 1)

    def tile_count(self) -> int:
        total = 0
        for z in self.zooms:
            x0, y0, x1, y1 = tile_span(self.bounds, z)
            total += (x1 - x0 + 1) * (y1 - y0 + 1)
        return total

    def tiles(self) -> Iterator[tuple[int, int, int]]:
        """z, x, y in PMTiles tile-id order (by zoom, then along the Hilbert curve): a clustered archive."""
        for z in self.zooms:
            x0, y0, x1, y1 = tile_span(self.bounds, z)
            cells = [(x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
            cells.sort(key=lambda cell: zxy_to_tileid(z, cell[0], cell[1]))
            for x, y in cells:
                yield z, x, y


def _clipped(extent: BBox, bbox: BBox | None) -> BBox:
    west, south, east, north = extent
    if bbox is not None:
        west, south, east, north = max(west, bbox[0]), max(south, bbox[1]), min(east, bbox[2]), min(north, bbox[3])
    clamp = MERCATOR_MAX_LAT
    return west, max(-clamp, min(clamp, south)), east, max(-clamp, min(clamp, north))


def archive_plan(layer: Layer, query: ExportQuery) -> ArchivePlan:
    """The tiles to write; a 400 when no feature is selected or the archive would pass the tile limit."""
    if query.bbox is not None and query.bbox[0] >= query.bbox[2]:
        raise ApplicationError("A tile archive's bbox must have west < east (none across 180°).", field="bbox")
    extent = export_extent(layer, query)
    if extent is None:
        raise ApplicationError("No feature matches this export's filters and bbox; there is nothing to tile.")
    plan = ArchivePlan(layer=layer, query=query, bounds=_clipped(extent, query.bbox))
    count, limit = plan.tile_count(), max_tiles()
    if count > limit:
        raise ApplicationError(
            f"This archive would cover {count:,} tiles at zoom {query.zooms[0]}-{query.zooms[1]}; "
            f"the limit is {limit:,} tiles. Lower maxzoom or pass a smaller bbox.",
            field="maxzoom",
        )
    return plan


# --- metadata -----------------------------------------------------------------------------------


def _vector_layers(plan: ArchivePlan) -> list[dict[str, Any]]:
    minzoom, maxzoom = plan.query.zooms
    return [{"id": LAYER_NAME, "fields": tilejson_fields(plan.layer), "minzoom": minzoom, "maxzoom": maxzoom}]


def _center(plan: ArchivePlan) -> tuple[float, float, int]:
    west, south, east, north = plan.bounds
    minzoom, maxzoom = plan.query.zooms
    return (west + east) / 2, (south + north) / 2, min(maxzoom, max(minzoom, (minzoom + maxzoom) // 2))


def mbtiles_metadata(plan: ArchivePlan) -> dict[str, str]:
    """The MBTiles 1.3 metadata rows: all text, `json` carrying vector_layers and their fields."""
    lon, lat, zoom = _center(plan)
    return {
        "name": plan.layer.name,
        "format": "pbf",
        "type": "overlay",
        "version": str(plan.layer.data_version),
        "description": plan.layer.description or plan.layer.name,
        "bounds": ",".join(f"{value:.7f}" for value in plan.bounds),
        "center": f"{lon:.7f},{lat:.7f},{zoom}",
        "minzoom": str(plan.query.zooms[0]),
        "maxzoom": str(plan.query.zooms[1]),
        "json": json.dumps({"vector_layers": _vector_layers(plan)}),
    }


# --- writers ------------------------------------------------------------------------------------

MBTILES_SCHEMA = """
CREATE TABLE metadata (name TEXT NOT NULL, value TEXT);
CREATE UNIQUE INDEX name ON metadata (name);
CREATE TABLE tiles (zoom_level INTEGER NOT NULL, tile_column INTEGER NOT NULL, tile_row INTEGER NOT NULL,
                    tile_data BLOB NOT NULL);
CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);
"""


class MBTilesArchive:
    """An MBTiles 1.3 file. No journal: an unfinished file is thrown away, never repaired."""

    def __init__(self, path: Path, plan: ArchivePlan) -> None:
        self.db = sqlite3.connect(path)
        self.db.executescript("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;" + MBTILES_SCHEMA)
        self.db.executemany("INSERT INTO metadata (name, value) VALUES (?, ?)", mbtiles_metadata(plan).items())

    def add(self, z: int, x: int, y: int, data: bytes) -> None:
        tms_row = 2**z - 1 - y  # MBTiles rows count from the south (TMS)
        self.db.execute("INSERT INTO tiles VALUES (?, ?, ?, ?)", (z, x, tms_row, data))

    def finish(self) -> None:
        self.db.commit()
        self.db.close()

    def abandon(self) -> None:
        self.db.close()


class PMTilesArchive:
    """A PMTiles v3 file; pmtiles' writer spools tile data to a temporary file until `finish`."""

    def __init__(self, path: Path, plan: ArchivePlan) -> None:
        self.plan = plan
        self.file = path.open("wb")
        self.writer = PMTilesWriter(self.file)

    def add(self, z: int, x: int, y: int, data: bytes) -> None:
        self.writer.write_tile(zxy_to_tileid(z, x, y), data)

    def finish(self) -> None:
        west, south, east, north = self.plan.bounds
        lon, lat, zoom = _center(self.plan)
        header = {
            "tile_type": TileType.MVT, "tile_compression": Compression.GZIP,
            "min_lon_e7": round(west * 1e7), "min_lat_e7": round(south * 1e7),
            "max_lon_e7": round(east * 1e7), "max_lat_e7": round(north * 1e7),
            "center_zoom": zoom, "center_lon_e7": round(lon * 1e7), "center_lat_e7": round(lat * 1e7),
        }  # fmt: skip
        metadata = {**mbtiles_metadata(self.plan), "vector_layers": _vector_layers(self.plan)}
        del metadata["json"]  # PMTiles carries vector_layers as JSON, not as a string in a string
        self.writer.finalize(header, metadata)
        self.file.close()

    def abandon(self) -> None:
        self.writer.tile_f.close()
        self.file.close()


def gzipped_tile(plan: ArchivePlan, z: int, x: int, y: int) -> bytes:
    """The live endpoint's tile for z/x/y, gzipped (mtime 0, so equal tiles are equal bytes); b"" if empty."""
    tile, _thinned = render_tile(TileRequest(plan.layer, z, x, y, plan.query.conditions))
    return gzip.compress(tile, compresslevel=GZIP_LEVEL, mtime=0) if tile else b""


def _fill(archive: MBTilesArchive | PMTilesArchive, plan: ArchivePlan, progress: ProgressReporter) -> int:
    total, written = plan.tile_count(), 0
    for visited, (z, x, y) in enumerate(plan.tiles(), start=1):
        progress.check_cancelled()
        data = gzipped_tile(plan, z, x, y)
        if data:
            archive.add(z, x, y, data)
            written += 1
        progress.note(f"tiling zoom {z}: {visited:,} of {total:,} tiles", 2 + visited * 93 // total)
    return written


def write_tile_archive(layer: Layer, query: ExportQuery, work: Path, progress: ProgressReporter) -> tuple[Path, int]:
    """Write the archive under `work` (ours, emptied by the caller); return its path and its tile count."""
    work.mkdir(parents=True, exist_ok=True)
    progress.set("planning", 1)
    plan = archive_plan(layer, query)
    target = work / export_file_name(layer, query.export_format)
    partial = target.with_name(target.name + ".partial")
    archive_class = MBTilesArchive if query.export_format == ExportFormat.MBTILES else PMTilesArchive
    archive = archive_class(partial, plan)
    try:
        written = _fill(archive, plan, progress)
        if written == 0:
            raise ApplicationError("Every tile of this export came out empty; there is nothing to archive.")
        progress.set("writing the archive", 96)
        archive.finish()
    except BaseException:
        archive.abandon()
        raise
    os.replace(partial, target)
    return target, written
