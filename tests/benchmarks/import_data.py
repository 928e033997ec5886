"""The files `make bench-import` uploads, generated once per seed and size into var/bench/data/.

- points_<n>_csv: the bench-tiles listings (same seed, same generator) as CSV with lon/lat columns;
- points_<n>_gpkg: the same rows as a GeoPackage (ogr2ogr), as a GIS user would send them;
- polygons_<n>_shp: building footprints (rotated rectangles, some hexagons, one in a thousand
  self-intersecting so the repair path runs) around the same cities, as a zipped Shapefile.

A file is written under a temporary name and renamed when complete, so an interrupted
generation is never mistaken for a cached one.
"""

from __future__ import annotations

import csv
import json
import math
import random
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.benchmarks.common import ROOT, SEED, cities, listing, tile_of

DATA = ROOT / "var" / "bench" / "data"
LISTING_FIELDS = ("id", "lon", "lat", "price", "bedrooms", "bathrooms", "property_type", "status", "listed_at")
USES = ("residential", "residential", "residential", "commercial", "industrial", "public", "garage")
METRES_PER_DEGREE = 111_320
MAX_TILE_ZOOM = 14
POLYGON_TILE_ZOOM = 12


@dataclass(frozen=True)
class Dataset:
    name: str  # e.g. points_1m_csv
    kind: str  # points_csv | points_gpkg | polygons_shp (what BENCH_DATASETS selects)
    path: Path
    first_tile: tuple[int, int, int]  # the tile a viewer opening the layer shows first


def size_label(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def _weighted_cities(rng: random.Random, n: int) -> list[dict[str, Any]]:
    places = cities()
    return rng.choices(places, weights=[c["population"] for c in places], k=n)


class Extent:
    def __init__(self) -> None:
        self.west, self.south, self.east, self.north = 180.0, 90.0, -180.0, -90.0

    def add(self, lon: float, lat: float) -> None:
        self.west, self.east = min(self.west, lon), max(self.east, lon)
        self.south, self.north = min(self.south, lat), max(self.north, lat)

    def smallest_tile(self) -> tuple[int, int, int]:
        for z in range(MAX_TILE_ZOOM, -1, -1):
            if tile_of(self.west, self.north, z) == tile_of(self.east, self.south, z):
                return tile_of(self.west, self.north, z)
        return 0, 0, 0


def _write_atomically(path: Path, write: Any) -> None:
    partial = path.with_name(f".partial-{path.name}")
    partial.unlink(missing_ok=True)
    write(partial)
    partial.rename(path)


def _ogr2ogr(*args: str) -> None:
    subprocess.run(["ogr2ogr", *args], check=True, capture_output=True)  # noqa: S603, S607 (fixed arguments)


# --- points -----------------------------------------------------------------------------------


def _points_csv(n: int, path: Path) -> Extent:
    rng, extent = random.Random(SEED), Extent()

    def write(target: Path) -> None:
        with target.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(LISTING_FIELDS)
            for index, city in enumerate(_weighted_cities(rng, n), start=1):
                lon, lat, props = listing(rng, city)
                extent.add(lon, lat)
                writer.writerow((index, f"{lon:.6f}", f"{lat:.6f}", *props.values()))

    _write_atomically(path, write)
    return extent


def _points_gpkg(source: Path, path: Path) -> None:
    _write_atomically(
        path,
        lambda target: _ogr2ogr(
            "-f", "GPKG", str(target), str(source), "-nln", "listings", "-nlt", "POINT", "-a_srs", "EPSG:4326",
            "-oo", "X_POSSIBLE_NAMES=lon", "-oo", "Y_POSSIBLE_NAMES=lat", "-oo", "KEEP_GEOM_COLUMNS=NO",
            "-oo", "AUTODETECT_TYPE=YES", "-gt", "100000",
        ),
    )  # fmt: skip


# --- polygons ---------------------------------------------------------------------------------


def _footprint(rng: random.Random, lon: float, lat: float) -> list[tuple[float, float]]:
    """A building-like ring around lon/lat in metres: a rotated rectangle, a hexagon, rarely a bow tie."""
    if rng.random() < 0.1:
        radius = rng.uniform(6, 20)
        corners = [(radius * math.cos(k * math.pi / 3), radius * math.sin(k * math.pi / 3)) for k in range(6)]
    else:
        w, h = rng.uniform(8, 40) / 2, rng.uniform(8, 30) / 2
        corners = [(-w, -h), (w, -h), (w, h), (-w, h)]
        if rng.random() < 0.001:
            corners[1], corners[2] = corners[2], corners[1]  # self-intersecting: ST_MakeValid's work
    angle = rng.uniform(0, math.pi)
    cos, sin = math.cos(angle), math.sin(angle)
    per_lon = METRES_PER_DEGREE * max(0.2, math.cos(math.radians(lat)))
    ring = [(lon + (x * cos - y * sin) / per_lon, lat + (x * sin + y * cos) / METRES_PER_DEGREE) for x, y in corners]
    return [*ring, ring[0]]


def _footprints(n: int) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(SEED + 1)
    for index, city in enumerate(_weighted_cities(rng, n), start=1):
        lon, lat, _ = listing(rng, city)
        ring = _footprint(rng, lon, lat)
        wkt = "POLYGON((" + ",".join(f"{x:.7f} {y:.7f}" for x, y in ring) + "))"
        levels = rng.choice((1, 1, 2, 2, 3, 4, 6, 10))
        yield wkt, index, round(levels * rng.uniform(2.8, 3.6), 1), levels, rng.choice(USES), rng.randrange(1850, 2026)


def _polygons_zip(n: int, path: Path, work: Path) -> tuple[int, int, int]:
    """The zipped Shapefile, and its first tile: footprints vanish below a tile unit at low zooms,
    so a viewer's first useful tile is a city one, z12 over the most populous city."""
    work.mkdir(parents=True, exist_ok=True)
    source = work / "buildings.csv"
    with source.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(("wkt", "id", "height", "levels", "use", "year_built"))
        writer.writerows(_footprints(n))
    for old in work.glob("buildings.[sdp][hbr][pfxj]"):
        old.unlink()
    _ogr2ogr(
        "-f", "ESRI Shapefile", str(work / "buildings.shp"), str(source), "-nln", "buildings", "-nlt", "POLYGON",
        "-a_srs", "EPSG:4326", "-oo", "GEOM_POSSIBLE_NAMES=wkt", "-oo", "KEEP_GEOM_COLUMNS=NO",
        "-oo", "AUTODETECT_TYPE=YES",
    )  # fmt: skip

    def write(target: Path) -> None:
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for suffix in ("shp", "shx", "dbf", "prj"):
                archive.write(work / f"buildings.{suffix}", f"buildings.{suffix}")

    _write_atomically(path, write)
    source.unlink()
    biggest = cities()[0]
    return tile_of(biggest["longitude"], biggest["latitude"], POLYGON_TILE_ZOOM)


# --- the cache --------------------------------------------------------------------------------


def _cached(path: Path, make: Callable[[], tuple[int, int, int]]) -> tuple[int, int, int]:
    """Generate `path` unless it exists (`make` returns its first tile, kept beside it)."""
    meta = path.with_name(path.name + ".json")
    if not (path.exists() and meta.exists()):
        print(f"[bench] generating {path.name} …", flush=True)
        meta.write_text(json.dumps({"first_tile": make()}))
    return tuple(json.loads(meta.read_text())["first_tile"])  # type: ignore[return-value]


def datasets(*, points: int, polygons: int) -> list[Dataset]:
    DATA.mkdir(parents=True, exist_ok=True)
    p, q = size_label(points), size_label(polygons)
    csv_path = DATA / f"listings_{points}_s{SEED}.csv"
    gpkg_path = DATA / f"listings_{points}_s{SEED}.gpkg"
    zip_path = DATA / f"buildings_{polygons}_s{SEED}.zip"
    points_tile = _cached(csv_path, lambda: _points_csv(points, csv_path).smallest_tile())
    _cached(gpkg_path, lambda: _points_gpkg(csv_path, gpkg_path) or points_tile)  # the CSV's rows
    polygons_tile = _cached(zip_path, lambda: _polygons_zip(polygons, zip_path, DATA / f"buildings_{polygons}"))
    return [
        Dataset(f"points_{p}_csv", "points_csv", csv_path, points_tile),
        Dataset(f"points_{p}_gpkg", "points_gpkg", gpkg_path, points_tile),
        Dataset(f"polygons_{q}_shp", "polygons_shp", zip_path, polygons_tile),
    ]
