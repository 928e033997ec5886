"""One import per format, end to end through the API (task run eagerly at commit)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apps.imports.loading import staging_tables_left
from apps.imports.tests import files
from apps.imports.tests.conftest import Team, feature_rows, job_of, layer_of, post_import

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager")]


def _assert_clean_4326(rows: list[dict]) -> None:
    assert rows
    assert all(row["srid"] == 4326 and row["valid"] for row in rows)


def test_geojson_becomes_a_point_layer_with_typed_attributes(team: Team, media_root: Path) -> None:
    response = post_import(
        team.client(),
        "places.geojson",
        files.geojson(files.point_features()),
        workspace=team.workspace.slug,
        name="Places",
    )
    job = job_of(response)
    layer = layer_of(job)
    rows = feature_rows(layer)
    _assert_clean_4326(rows)
    assert {r["properties"]["name"] for r in rows} == {"Senate Square", "Kamppi", "Kallio Church"}
    senate = next(r for r in rows if r["properties"]["name"] == "Senate Square")
    assert senate["properties"] == {"name": "Senate Square", "year": 1640, "open": True, "since": "2020-05-01"}
    assert (round(senate["x"], 4), round(senate["y"], 4)) == (24.9525, 60.1694)
    assert layer.name == "Places" and layer.geometry_type == "point" and layer.feature_count == 3
    assert layer.attribute_schema == {"name": "string", "year": "integer", "open": "boolean", "since": "date"}
    assert layer.extent is not None and layer.data_version == 2
    assert job.result == {
        "mode": "new",
        "format": "geojson",
        "source_layer": None,
        "read": 3,
        "imported": 3,
        "repaired": 0,
        "skipped": {},
        "layer": str(layer.pk),
        "layers": [str(layer.pk)],
        "layer_results": [
            {
                "source_layer": None,
                "layer": str(layer.pk),
                "name": "Places",
                "read": 3,
                "imported": 3,
                "repaired": 0,
                "skipped": {},
            }
        ],
    }
    assert job.progress == 100 and job.phase == "done"
    assert staging_tables_left() == []
    assert not (media_root / "imports" / str(job.pk)).exists()


def test_invalid_polygons_are_repaired_and_points_in_a_polygon_file_skipped(team: Team) -> None:
    features = [
        files.polygon_feature("square", files.SQUARE),
        files.polygon_feature("bowtie", files.BOWTIE),
        {"type": "Feature", "properties": {"name": "no geometry"}, "geometry": None},
    ]
    job = job_of(
        post_import(
            team.client(), "areas.geojson", files.geojson(features), workspace=team.workspace.slug, name="Areas"
        )
    )
    layer = layer_of(job)
    rows = feature_rows(layer)
    _assert_clean_4326(rows)
    assert layer.geometry_type == "polygon"
    assert sorted(r["type"] for r in rows) == ["MULTIPOLYGON", "POLYGON"]  # the bow tie became two triangles
    assert job.result["read"] == 3 and job.result["imported"] == 2 and job.result["repaired"] == 1
    assert job.result["skipped"] == {"no geometry": 1}


def test_geojsonseq_is_read(team: Team) -> None:
    content = b"\n".join(json.dumps(f).encode() for f in files.point_features()) + b"\n"
    layer = layer_of(
        job_of(post_import(team.client(), "places.geojsonl", content, workspace=team.workspace.slug, name="Seq"))
    )
    assert layer.feature_count == 3
    _assert_clean_4326(feature_rows(layer))


def test_csv_with_lat_lon_columns(team: Team) -> None:
    layer = layer_of(
        job_of(post_import(team.client(), "places.csv", files.csv_latlon(), workspace=team.workspace.slug, name="CSV"))
    )
    rows = feature_rows(layer)
    _assert_clean_4326(rows)
    assert layer.geometry_type == "point"
    assert {r["properties"]["name"] for r in rows} == {"Senate Square", "Kamppi", "Kallio Church"}
    assert layer.attribute_schema == {"name": "string", "year": "integer"}  # lat/lon became the geometry
    kamppi = next(r for r in rows if r["properties"]["name"] == "Kamppi")
    assert (round(kamppi["x"], 4), round(kamppi["y"], 4)) == (24.9316, 60.1688)


def test_csv_with_a_wkt_column_makes_a_mixed_layer(team: Team) -> None:
    layer = layer_of(
        job_of(post_import(team.client(), "shapes.csv", files.csv_wkt(), workspace=team.workspace.slug, name="WKT"))
    )
    rows = feature_rows(layer)
    _assert_clean_4326(rows)
    assert layer.geometry_type == "mixed"
    assert sorted(r["type"] for r in rows) == ["LINESTRING", "POINT"]
    assert layer.attribute_schema == {"id": "integer", "label": "string"}


def test_zipped_shapefile_is_reprojected_from_its_prj(team: Team, tmp_path: Path) -> None:
    content = files.zipped_shapefile(tmp_path, files.point_features())
    job = job_of(post_import(team.client(), "places.zip", content, workspace=team.workspace.slug, name="Shp"))
    layer = layer_of(job)
    rows = feature_rows(layer)
    _assert_clean_4326(rows)
    senate = next(r for r in rows if r["properties"]["name"] == "Senate Square")
    assert (round(senate["x"], 5), round(senate["y"], 5)) == (24.9525, 60.1694)
    assert senate["properties"]["year"] == 1640
    assert job.result["format"] == "shapefile"


def test_geopackage_layer_is_chosen_by_name_and_reprojected(team: Team, tmp_path: Path) -> None:
    content = files.two_layer_geopackage(tmp_path)
    job = job_of(
        post_import(
            team.client(), "two.gpkg", content, workspace=team.workspace.slug, name="Areas", source_layer="areas"
        )
    )
    layer = layer_of(job)
    rows = feature_rows(layer)
    _assert_clean_4326(rows)
    assert layer.geometry_type == "polygon" and len(rows) == 1
    assert round(rows[0]["x"], 3) == 24.905 and job.result["source_layer"] == "areas"


def test_geopackage_with_two_layers_and_no_choice_fails_naming_them(team: Team, tmp_path: Path) -> None:
    job = job_of(
        post_import(
            team.client(), "two.gpkg", files.two_layer_geopackage(tmp_path), workspace=team.workspace.slug, name="X"
        )
    )
    assert job.status == "failed"
    assert "2 layers (places, areas)" in job.error and "source_layer" in job.error


def test_kml_placemarks_are_imported(team: Team) -> None:
    layer = layer_of(
        job_of(post_import(team.client(), "places.kml", files.SIMPLE_KML, workspace=team.workspace.slug, name="KML"))
    )
    rows = feature_rows(layer)
    _assert_clean_4326(rows)
    assert {r["properties"]["Name"] for r in rows} == {"Senate Square", "Kamppi"}


def test_flatgeobuf_is_read_with_its_attributes(team: Team, tmp_path: Path) -> None:
    content = files.flatgeobuf(tmp_path, files.point_features())
    job = job_of(post_import(team.client(), "places.fgb", content, workspace=team.workspace.slug, name="FGB"))
    layer = layer_of(job)
    rows = feature_rows(layer)
    _assert_clean_4326(rows)
    assert job.result["format"] == "flatgeobuf" and layer.feature_count == 3 and layer.geometry_type == "point"
    kallio = next(r for r in rows if r["properties"]["name"] == "Kallio Church")
    assert kallio["properties"]["year"] == 1912 and kallio["properties"]["open"] is True
    assert (round(kallio["x"], 4), round(kallio["y"], 4)) == (24.9496, 60.1841)
