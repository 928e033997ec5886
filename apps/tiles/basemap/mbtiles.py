"""A minimal MBTiles 1.3 writer and reader (https://github.com/mapbox/mbtiles-spec).

Rows are TMS: `tile_row` counts from the south, so an XYZ tile (z, x, y) is
stored at row 2**z - 1 - y. django-tiles-gl looks rows up by the URL's y as
is and advertises `scheme: tms` in its TileJSON (its default when the file has
no `scheme` row), so MapLibre asks for the flipped row: a planet file from
OpenMapTiles and ours are served the same way.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import sqlite3
from pathlib import Path

_SCHEMA = """
CREATE TABLE metadata (name text NOT NULL, value text);
CREATE UNIQUE INDEX name ON metadata (name);
CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, tile_data blob);
CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);
"""


def tms_row(z: int, y: int) -> int:
    return (1 << z) - 1 - y


class MBTilesWriter:
    """Writes into `<path>.partial`, then renames over `path`: a server never reads a half-built file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        self.tiles = 0
        self.bytes = 0
        self._db: sqlite3.Connection | None = None

    def __enter__(self) -> MBTilesWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial.unlink(missing_ok=True)
        self._db = sqlite3.connect(self.partial)
        # A scratch file until the rename: durability per statement would only slow the build.
        self._db.executescript("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;" + _SCHEMA)
        return self

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("MBTilesWriter used outside its `with` block")
        return self._db

    def add_tile(self, z: int, x: int, y: int, mvt: bytes) -> None:
        """Store an XYZ tile, gzipped (django-tiles-gl always answers with Content-Encoding: gzip)."""
        data = gzip.compress(mvt, compresslevel=9, mtime=0)  # mtime=0: same input, same bytes
        self.db.execute(
            "INSERT INTO tiles (zoom_level, tile_column, tile_row, tile_data) VALUES (?, ?, ?, ?)",
            (z, x, tms_row(z, y), data),
        )
        self.tiles += 1
        self.bytes += len(data)

    def set_metadata(self, metadata: dict[str, str]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO metadata (name, value) VALUES (?, ?)", metadata.items())

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        self.db.commit()
        self.db.close()
        self._db = None
        if exc_type is None:
            os.replace(self.partial, self.path)
        else:
            self.partial.unlink(missing_ok=True)


def read_metadata(path: Path) -> dict[str, str]:
    """The metadata rows of an existing MBTiles file; empty when it is missing or unreadable."""
    if not path.is_file():
        return {}
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return dict(db.execute("SELECT name, value FROM metadata").fetchall())
    except sqlite3.Error:
        return {}


def read_tile(path: Path, z: int, x: int, y: int) -> bytes | None:
    """The decompressed MVT bytes of XYZ tile (z, x, y), or None."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        row = db.execute(
            "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
            (z, x, tms_row(z, y)),
        ).fetchone()
    return gzip.decompress(row[0]) if row else None


def tile_counts(path: Path) -> dict[int, int]:
    """Number of tiles per zoom."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return dict(db.execute("SELECT zoom_level, count(*) FROM tiles GROUP BY zoom_level").fetchall())
