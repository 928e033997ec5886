"""MBTiles / PMTiles exports read back tile by tile and compared with what the live tile endpoint serves."""

from __future__ import annotations

import gzip
import io
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import pytest
from django.contrib.gis.geos import LineString, Point
from django.core.files.storage import default_storage
from pmtiles.reader import MmapSource, Reader, all_tiles
from pmtiles.tile import Compression, TileType
from rest_framework.test import APIClient

from apps.imports.export_services import export_execute
from apps.imports.exports import export_query
from apps.jobs.models import Job
from apps.layers.models import Feature, Layer
from apps.tiles.tests.test_tiles import tile_xy
from apps.workspaces.models import Role
from apps.workspaces.tenancy import workspace_scope
from celery_app import app as celery_app
from conftest import client_for
from tests.factories import FeatureFactory, MapLayerFactory, MembershipFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("media_root")]

TileSet = dict[tuple[int, int, int], bytes]  # (z, x, y) in XYZ → the stored (gzipped) tile
LISTINGS = [
    (24.940, 60.170, {"price": 250000, "status": "active"}),
    (24.941, 60.171, {"price": 410000, "status": "active"}),
    (24.942, 60.169, {"price": 520000, "status": "sold"}),
    (24.960, 60.180, {"price": 330000, "status": "active"}),
    (24.925, 60.158, {"price": 199000, "status": "sold"}),
]


@pytest.fixture
def listings(transactional_db: None) -> tuple[Layer, list[Feature], APIClient]:
    """A workspace map's point layer clustered up to z8 (as a large layer is), and its editor's client."""
    entry = MapLayerFactory(map__visibility="workspace", layer__geometry_type="point", layer__name="Listings")
    layer = entry.layer
    layer.attribute_schema = {"price": "integer", "status": "string"}
    layer.style_config = {"cluster": True, "cluster_max_zoom": 8}
    layer.save()
    features = [FeatureFactory(layer=layer, geom=Point(x, y, srid=4326), properties=p) for x, y, p in LISTINGS]
    editor = MembershipFactory(workspace=layer.workspace, role=Role.EDITOR).user
    return layer, features, client_for(editor)


def export(client: APIClient, layer: Layer, query: str) -> Any:
    return client.get(f"/api/v1/layers/{layer.pk}/export/?{query}")


def finished_job(response: Any) -> Job:
    assert response.status_code == 202, response.json()
    job = Job.objects.unscoped().get(pk=response.json()["id"])
    assert job.status == "succeeded", job.error
    return job


def downloaded(client: APIClient, job: Job, tmp_path: Path) -> Path:
    response = client.get(f"/api/v1/jobs/{job.pk}/download/")
    assert response.status_code == 200
    target = tmp_path / job.result["file_name"]
    target.write_bytes(b"".join(response.streaming_content))
    return target


def mbtiles_tiles(path: Path) -> tuple[dict[str, str], TileSet]:
    with sqlite3.connect(path) as db:
        metadata = dict(db.execute("SELECT name, value FROM metadata"))
        rows = db.execute("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles").fetchall()
    return metadata, {(z, x, 2**z - 1 - row): data for z, x, row, data in rows}  # TMS rows back to XYZ


def pmtiles_tiles(path: Path) -> tuple[dict[str, Any], dict[str, Any], TileSet]:
    with path.open("rb") as handle:
        source = MmapSource(handle)
        reader = Reader(source)
        return reader.header(), reader.metadata(), {zxy: bytes(data) for zxy, data in all_tiles(source)}


def live(client: APIClient, layer: Layer, z: int, x: int, y: int, query: str = "") -> bytes | None:
    """The live endpoint's MVT bytes for z/x/y (uncompressed), or None for an empty tile (204)."""
    response = client.get(f"/tiles/layers/{layer.pk}/{z}/{x}/{y}.mvt" + (f"?{query}" if query else ""))
    assert response.status_code in (200, 204), response.content[:200]
    return response.content if response.status_code == 200 else None


def covering(points: list[tuple[float, float]], z: int) -> set[tuple[int, int, int]]:
    """Every tile of zoom z in the points' bounding box."""
    (x0, y0), (x1, y1) = (
        tile_xy(min(p[0] for p in points), max(p[1] for p in points), z),
        tile_xy(max(p[0] for p in points), min(p[1] for p in points), z),
    )
    return {(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)}


def assert_same_as_live(
    client: APIClient, layer: Layer, tiles: TileSet, points: list[tuple[float, float]], zooms: range, query: str = ""
) -> None:
    """Each stored tile is the live tile byte for byte; each non-empty live tile over the data is stored."""
    assert tiles and {z for z, _x, _y in tiles} == set(zooms)
    for (z, x, y), data in tiles.items():
        assert data[:2] == b"\x1f\x8b", "tiles are stored gzipped"
        assert gzip.decompress(data) == live(client, layer, z, x, y, query), f"tile {z}/{x}/{y} differs"
    for z in zooms:
        for tile in covering(points, z) - set(tiles):
            assert live(client, layer, *tile, query) is None, f"non-empty tile {tile} missing from the archive"


def features_of(data: bytes) -> list[dict[str, Any]]:
    return mapbox_vector_tile.decode(gzip.decompress(data))["features"]["features"]


def vertex_count(coordinates: list[Any]) -> int:
    """Positions in a (multi) line's nested coordinate lists."""
    return 1 if isinstance(coordinates[0], (int, float)) else sum(vertex_count(c) for c in coordinates)


POINTS = [(x, y) for x, y, _p in LISTINGS]


@pytest.mark.usefixtures("eager")
def test_mbtiles_holds_the_live_tiles_with_clusters_at_low_zoom(listings: Any, tmp_path: Path) -> None:
    layer, features, client = listings
    response = export(client, layer, "format=mbtiles&maxzoom=12")
    assert response["Location"] == f"/api/v1/jobs/{response.json()['id']}/"
    job = finished_job(response)
    assert job.params["minzoom"] == 0 and job.params["maxzoom"] == 12 and job.result["tiles"] > 0
    metadata, tiles = mbtiles_tiles(downloaded(client, job, tmp_path))
    assert_same_as_live(client, layer, tiles, POINTS, range(0, 13))
    assert metadata["format"] == "pbf" and metadata["name"] == "Listings"
    assert (metadata["minzoom"], metadata["maxzoom"]) == ("0", "12")
    west, south, east, north = (float(v) for v in metadata["bounds"].split(","))
    assert (west, south, east, north) == pytest.approx((24.925, 60.158, 24.960, 60.180))
    lon, lat, zoom = metadata["center"].split(",")
    assert west < float(lon) < east and south < float(lat) < north and 0 <= int(zoom) <= 12
    (vector_layer,) = json.loads(metadata["json"])["vector_layers"]
    assert vector_layer["id"] == "features" and vector_layer["fields"] == {"price": "Number", "status": "String"}

    (cluster,) = features_of(tiles[(5, *tile_xy(24.94, 60.17, 5))])  # z5: all five in one cluster
    assert cluster["properties"] == {"cluster": True, "point_count": 5}
    z12 = [f for (z, _x, _y), data in tiles.items() if z == 12 for f in features_of(data)]
    assert sorted(f["id"] for f in z12) == sorted(f.pk for f in features)  # past z8: every point itself
    with sqlite3.connect(tmp_path / job.result["file_name"]) as db:
        indexes = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'").fetchall()
    assert any("UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row)" in sql for _n, sql in indexes)


@pytest.mark.usefixtures("eager")
def test_pmtiles_holds_the_same_tiles_with_a_v3_header(listings: Any, tmp_path: Path) -> None:
    layer, _features, client = listings
    job = finished_job(export(client, layer, "format=pmtiles&minzoom=3&maxzoom=14"))
    assert job.result["file_name"] == "listings.pmtiles"
    header, metadata, tiles = pmtiles_tiles(downloaded(client, job, tmp_path))
    assert_same_as_live(client, layer, tiles, POINTS, range(3, 15))
    assert header["version"] == 3 and header["tile_type"] == TileType.MVT
    assert header["tile_compression"] == Compression.GZIP and header["clustered"]
    assert (header["min_zoom"], header["max_zoom"]) == (3, 14)
    assert header["min_lon_e7"] == round(24.925e7) and header["max_lat_e7"] == round(60.180e7)
    assert metadata["vector_layers"][0]["fields"] == {"price": "Number", "status": "String"}


@pytest.mark.usefixtures("eager")
def test_filters_apply_to_every_archived_tile(listings: Any, tmp_path: Path) -> None:
    layer, features, client = listings
    job = finished_job(export(client, layer, "format=mbtiles&minzoom=5&maxzoom=13&price__gte=300000&status=active"))
    assert job.params["filters"] == {"price__gte": "300000", "status": "active"}
    _metadata, tiles = mbtiles_tiles(downloaded(client, job, tmp_path))
    kept = [(x, y) for x, y, p in LISTINGS if p["price"] >= 300000 and p["status"] == "active"]
    assert_same_as_live(client, layer, tiles, kept, range(5, 14), query="price__gte=300000&status=active")
    (cluster,) = features_of(tiles[(5, *tile_xy(24.94, 60.17, 5))])
    assert cluster["properties"]["point_count"] == 2
    z13 = {f["id"] for (z, _x, _y), data in tiles.items() if z == 13 for f in features_of(data)}
    assert z13 == {features[1].pk, features[3].pk}


@pytest.mark.usefixtures("eager")
def test_a_bbox_narrows_the_area_tiled_but_not_what_a_tile_holds(listings: Any, tmp_path: Path) -> None:
    layer, _features, client = listings
    job = finished_job(export(client, layer, "format=mbtiles&maxzoom=14&bbox=24.92,60.15,24.93,60.16"))
    _metadata, tiles = mbtiles_tiles(downloaded(client, job, tmp_path))
    assert sorted(tiles) == [(z, *tile_xy(24.925, 60.158, z)) for z in range(15)]  # one tile a zoom, over Kamppi
    for (z, x, y), data in tiles.items():
        assert gzip.decompress(data) == live(client, layer, z, x, y)  # whole tiles, as served live
    (cluster,) = features_of(tiles[(5, *tile_xy(24.94, 60.17, 5))])
    assert cluster["properties"]["point_count"] == 5


@pytest.mark.usefixtures("eager")
def test_a_line_layer_is_archived_simplified_as_the_live_tiles(transactional_db: None, tmp_path: Path) -> None:
    entry = MapLayerFactory(map__visibility="workspace", layer__geometry_type="line", layer__name="Coast")
    layer = entry.layer
    coast = [(24.90 + i * 0.001, 60.15 + (0.002 if i % 2 else 0) + i * 0.0005) for i in range(100)]
    FeatureFactory(layer=layer, geom=LineString(coast, srid=4326), properties={})
    client = client_for(MembershipFactory(workspace=layer.workspace, role=Role.VIEWER).user)
    job = finished_job(export(client, layer, "format=pmtiles&maxzoom=13"))
    _header, _metadata, tiles = pmtiles_tiles(downloaded(client, job, tmp_path))
    assert_same_as_live(client, layer, tiles, coast, range(0, 14))
    vertices = {z: 0 for z in range(14)}
    for (z, _x, _y), data in tiles.items():
        vertices[z] += sum(vertex_count(f["geometry"]["coordinates"]) for f in features_of(data))
    assert vertices[2] < 5 < 50 < vertices[13]  # simplified at low zoom, as served live


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ("format=mbtiles&maxzoom=17", "maxzoom", "0 to 16"),
        ("format=pmtiles&minzoom=-1", "minzoom", "0 to 16"),
        ("format=pmtiles&maxzoom=ten", "maxzoom", "0 to 16"),
        ("format=mbtiles&minzoom=9&maxzoom=4", "minzoom", "above maxzoom"),
        ("format=mbtiles&colour=red", "colour", "Unknown attribute"),
        ("format=mbtiles&price__gte=cheap", "price__gte", "Expected integer"),
        ("format=geojson&maxzoom=5", "maxzoom", "Only the mbtiles and pmtiles"),
        ("format=mbtiles&bbox=170,-10,-170,10", "bbox", "west < east"),
    ],
)
def test_bad_parameters_are_refused_naming_the_parameter(listings: Any, query: str, field: str, words: str) -> None:
    layer, _features, client = listings
    response = export(client, layer, query)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and field in body["errors"] and words in body["detail"]
    assert not Job.objects.unscoped().exists()


def test_an_archive_past_the_tile_limit_or_with_nothing_to_tile_is_refused(listings: Any, settings: Any) -> None:
    layer, _features, client = listings
    settings.EXPORT_TILES_MAX_TILES = 40
    response = export(client, layer, "format=mbtiles&maxzoom=16")
    assert response.status_code == 400 and "maxzoom" in response.json()["errors"]
    assert "the limit is 40 tiles" in response.json()["detail"]
    response = export(client, layer, "format=pmtiles&price__gte=9000000")
    assert response.status_code == 400 and "nothing to tile" in response.json()["detail"]
    assert not Job.objects.unscoped().exists()


def test_tile_archives_follow_the_layer_view_right(listings: Any) -> None:
    layer, _features, _client = listings
    outsider = client_for(UserFactory())
    assert export(outsider, layer, "format=mbtiles").status_code == 404
    assert client_for(None).get(f"/api/v1/layers/{layer.pk}/export/?format=pmtiles").status_code == 401


def _queued_job(client: APIClient, layer: Layer, query: str) -> Job:
    """A job created by the API but not run: its message goes to the broker, which the test purges."""
    response = export(client, layer, query)
    assert response.status_code == 202, response.json()
    celery_app.control.purge()
    return Job.objects.unscoped().get(pk=response.json()["id"])


def test_a_redelivered_job_starts_clean_and_a_finished_one_is_left_alone(listings: Any, media_root: Path) -> None:
    layer, _features, client = listings
    job = _queued_job(client, layer, "format=mbtiles&maxzoom=10")
    # What a worker killed mid-store leaves: a half-written file in the job's storage directory.
    default_storage.save(f"jobs/exports/{job.pk}/listings.mbtiles", io.BytesIO(b"half an archive"))
    Job.objects.unscoped().filter(pk=job.pk).update(status="running", attempts=1)
    with workspace_scope(job.workspace_id):
        export_execute(job=job)
    job.refresh_from_db()
    assert job.status == "succeeded" and job.attempts == 2, job.error
    stored = sorted(p.name for p in (media_root / "jobs" / "exports" / str(job.pk)).iterdir())
    assert stored == ["listings.mbtiles"] and job.output_file.name.endswith("/listings.mbtiles")
    assert job.output_file.size > 1000
    finished_at = job.finished_at
    with workspace_scope(job.workspace_id):
        export_execute(job=job)  # redelivered after it finished
    job.refresh_from_db()
    assert job.finished_at == finished_at and job.attempts == 2


def test_cancelling_stops_the_tiling_and_stores_nothing(
    listings: Any, media_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job is cancelled through the API once its progress shows tiling; the loop stops within a second."""
    from apps.tiles import archives

    layer, _features, client = listings
    job = _queued_job(client, layer, "format=pmtiles&maxzoom=16")
    render = archives.gzipped_tile
    calls: list[tuple[int, int, int]] = []
    seen: dict[str, Any] = {}

    def render_and_cancel_once_tiling_shows(plan: Any, z: int, x: int, y: int) -> bytes:
        calls.append((z, x, y))
        if len(calls) == 2:  # the first tile has been noted: the reporter shows it within a second
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and not seen.get("phase", "").startswith("tiling"):
                polled = client.get(f"/api/v1/jobs/{job.pk}/").json()
                seen.update(phase=polled["phase"], progress=polled["progress"])
            assert client.post(f"/api/v1/jobs/{job.pk}/cancel/").status_code == 200
        if len(calls) > 2:
            time.sleep(0.05)  # a slow tile, so the loop is still running when it is told to stop
        return render(plan, z, x, y)

    monkeypatch.setattr(archives, "gzipped_tile", render_and_cancel_once_tiling_shows)
    with workspace_scope(job.workspace_id):
        export_execute(job=job)
    job.refresh_from_db()
    assert seen["phase"].startswith("tiling zoom") and 2 <= seen["progress"] < 95
    assert job.status == "cancelled" and not job.output_file
    total = archives.archive_plan(layer, export_query(layer, {"format": "pmtiles", "maxzoom": "16"})).tile_count()
    assert len(calls) < total / 2, (len(calls), total)  # stopped long before the end
    assert not (media_root / "jobs").exists() or not any((media_root / "jobs").rglob("*.pmtiles"))
