"""Exports: every format read back, filters and bbox applied, formula cells escaped, access checked."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage

from apps.imports.exports import csv_cell
from apps.imports.tests.conftest import Team, job_of, layer_of, post_import
from apps.jobs.models import Job
from apps.layers.models import Layer
from conftest import client_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager")]

LISTINGS = [
    # name, price, ratio, open, note, lon, lat
    ("Senate Square", 250_000, 0.5, True, '=HYPERLINK("http://evil")', 24.9525, 60.1694),
    ("Kamppi", 310_000, 1.25, False, "+1+1", 24.9316, 60.1688),
    ("Kallio", 199_000, 2.0, True, "-2", 24.9496, 60.1841),
    ("Pasila", 420_000, 0.75, False, "@SUM(A1)", 24.9330, 60.1990),
    ("Tampere", 150_000, 3.5, True, "plain, with a comma", 23.7610, 61.4978),
]


def listings_geojson() -> bytes:
    features = [
        {
            "type": "Feature",
            "properties": {"name": n, "price": p, "ratio": r, "open": o, "note": note},
            "geometry": {"type": "Point", "coordinates": [lon, lat]},
        }
        for n, p, r, o, note, lon, lat in LISTINGS
    ]
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


@pytest.fixture
def layer(team: Team) -> Layer:
    response = post_import(
        team.client(), "l.geojson", listings_geojson(), workspace=team.workspace.slug, name="Listings"
    )
    return layer_of(job_of(response))


def export(team: Team, layer: Layer, query: str, who: str = "editor") -> Any:
    return team.client(who).get(f"/api/v1/layers/{layer.pk}/export/?{query}")


def body(response: Any) -> bytes:
    assert response.status_code == 200, getattr(response, "data", response)
    return b"".join(response.streaming_content)


def as_geojson(path: str, tmp_path: Path) -> dict[str, Any]:
    """Any OGR-readable file, read back by GDAL into GeoJSON."""
    result = subprocess.run(  # noqa: S603
        ["ogr2ogr", "-f", "GeoJSON", "/vsistdout/", path],  # noqa: S607
        capture_output=True, check=True, cwd=tmp_path,
    )  # fmt: skip
    return json.loads(result.stdout)


def ogrinfo_summary(path: Path) -> str:
    """ogrinfo's layer summary (this GDAL, 3.6, has no -json)."""
    return subprocess.run(["ogrinfo", "-so", "-al", str(path)], capture_output=True, check=True, text=True).stdout  # noqa: S603, S607


def test_geojson_export_holds_every_feature_and_attribute(team: Team, layer: Layer) -> None:
    response = export(team, layer, "format=geojson")
    assert response["Content-Type"] == "application/geo+json"
    assert 'filename="listings.geojson"' in response["Content-Disposition"]
    data = json.loads(body(response))
    assert len(data["features"]) == 5
    first = data["features"][0]
    assert first["properties"] == {
        "name": "Senate Square",
        "price": 250000,
        "ratio": 0.5,
        "open": True,
        "note": LISTINGS[0][4],
    }
    assert first["geometry"] == {"type": "Point", "coordinates": [24.9525, 60.1694]}


def test_csv_export_escapes_formula_cells(team: Team, layer: Layer) -> None:
    rows = list(csv.DictReader(io.StringIO(body(export(team, layer, "format=csv")).decode())))
    assert len(rows) == 5
    assert [r["note"] for r in rows] == [
        "'=HYPERLINK(\"http://evil\")", "'+1+1", "'-2", "'@SUM(A1)", "plain, with a comma",
    ]  # fmt: skip
    assert rows[0]["price"] == "250000" and rows[0]["open"] == "true" and rows[0]["WKT"] == "POINT(24.9525 60.1694)"


def test_csv_cells_escape_tab_and_carriage_return_but_not_numbers() -> None:
    assert csv_cell("\tcmd") == "'\tcmd" and csv_cell("\rx") == "'\rx"
    assert csv_cell(-5) == "-5" and csv_cell(None) == "" and csv_cell("ok") == "ok"


def test_gpkg_export_round_trips(team: Team, layer: Layer, tmp_path: Path) -> None:
    target = tmp_path / "out.gpkg"
    target.write_bytes(body(export(team, layer, "format=gpkg")))
    info = ogrinfo_summary(target)
    assert "Feature Count: 5" in info and "Geometry: Point" in info
    assert (
        "price: Integer64" in info
        and "ratio: Real" in info
        and "name: String" in info
        and "open: Integer(Boolean)" in info
    )
    features = as_geojson(str(target), tmp_path)["features"]
    assert features[1]["properties"]["name"] == "Kamppi" and features[1]["properties"]["price"] == 310000


def test_shapefile_export_is_a_zip_that_round_trips(team: Team, layer: Layer, tmp_path: Path) -> None:
    target = tmp_path / "out.zip"
    target.write_bytes(body(export(team, layer, "format=shp")))
    names = sorted(zipfile.ZipFile(target).namelist())
    assert {"listings.shp", "listings.shx", "listings.dbf", "listings.prj"} <= set(names)
    features = as_geojson(f"/vsizip/{target}/listings.shp", tmp_path)["features"]
    assert len(features) == 5 and features[4]["properties"]["name"] == "Tampere"
    assert features[4]["geometry"]["coordinates"] == pytest.approx([23.761, 61.4978])


def test_kml_export_round_trips(team: Team, layer: Layer, tmp_path: Path) -> None:
    target = tmp_path / "out.kml"
    target.write_bytes(body(export(team, layer, "format=kml")))
    features = as_geojson(str(target), tmp_path)["features"]
    assert len(features) == 5 and {f["properties"]["Name"] for f in features} >= {"Kamppi", "Tampere"}


def test_filters_and_bbox_apply_to_every_format(team: Team, layer: Layer, tmp_path: Path) -> None:
    data = json.loads(body(export(team, layer, "format=geojson&price__gte=250000&open=true")))
    assert [f["properties"]["name"] for f in data["features"]] == ["Senate Square"]
    helsinki = "bbox=24.9,60.1,25.0,60.25"
    rows = list(csv.DictReader(io.StringIO(body(export(team, layer, f"format=csv&{helsinki}")).decode())))
    assert len(rows) == 4
    target = tmp_path / "f.gpkg"
    target.write_bytes(body(export(team, layer, f"format=gpkg&{helsinki}&name__in=Kamppi,Kallio,Tampere")))
    assert sorted(f["properties"]["name"] for f in as_geojson(str(target), tmp_path)["features"]) == [
        "Kallio",
        "Kamppi",
    ]


def test_a_quote_in_a_filter_value_reaches_ogr2ogr_as_data(team: Team, layer: Layer, tmp_path: Path) -> None:
    target = tmp_path / "q.gpkg"
    target.write_bytes(body(export(team, layer, "format=gpkg&name=x'%20OR%20'1'='1")))
    assert "Feature Count: 0" in ogrinfo_summary(target)


def test_bad_requests_say_why(team: Team, layer: Layer) -> None:
    assert export(team, layer, "format=xlsx").status_code == 400
    assert export(team, layer, "format=csv&colour=red").status_code == 400
    assert export(team, layer, "format=csv&bbox=1,2,3").status_code == 400


def test_outsiders_get_404_and_anonymous_visitors_401(team: Team, layer: Layer) -> None:
    assert export(team, layer, "format=geojson", who="outsider").status_code == 404
    assert export(team, layer, "format=geojson", who="viewer").status_code == 404  # not on any map they see
    assert client_for(None).get(f"/api/v1/layers/{layer.pk}/export/?format=csv").status_code == 401
    assert export(team, layer, "format=geojson", who="owner").status_code == 200


def test_a_large_export_becomes_a_job_with_the_file_as_output(team: Team, layer: Layer, settings: Any) -> None:
    settings.EXPORT_SYNC_MAX_FEATURES = 3
    response = export(team, layer, "format=csv&ratio__lt=3")
    assert response.status_code == 202
    job = Job.objects.unscoped().get(pk=response.data["id"])
    assert job.kind == "export" and job.status == "succeeded", job.error
    assert job.result["file_name"] == "listings.csv"
    with default_storage.open(job.output_file.name) as stored:
        rows = list(csv.DictReader(io.StringIO(stored.read().decode())))
    assert len(rows) == 4 and rows[0]["note"].startswith("'=")
    polled = team.client().get(f"/api/v1/jobs/{job.pk}/").json()
    assert polled["status"] == "succeeded" and polled["output_url"]


def test_polygons_export_as_multipolygons_and_a_mixed_layer_refuses_shapefile(team: Team, tmp_path: Path) -> None:
    from apps.imports.tests import files

    polygons = layer_of(job_of(post_import(
        team.client(), "p.geojson", files.geojson([files.polygon_feature("square", files.SQUARE)]),
        workspace=team.workspace.slug, name="Areas",
    )))  # fmt: skip
    target = tmp_path / "areas.zip"
    target.write_bytes(body(export(team, polygons, "format=shp")))
    (feature,) = as_geojson(f"/vsizip/{target}/areas.shp", tmp_path)["features"]
    assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon") and feature["properties"] == {"name": "square"}
    mixed = [files.polygon_feature("square", files.SQUARE), *files.point_features()]
    layer = layer_of(
        job_of(post_import(team.client(), "m.geojson", files.geojson(mixed), workspace=team.workspace.slug, name="M"))
    )
    assert layer.geometry_type == "mixed"
    response = export(team, layer, "format=shp")
    assert response.status_code == 400 and "GeoPackage" in json.dumps(response.json())
    target = tmp_path / "m.gpkg"
    target.write_bytes(body(export(team, layer, "format=gpkg")))
    assert "Feature Count: 4" in ogrinfo_summary(target)


def test_the_job_output_downloads_for_its_creator_only(team: Team, layer: Layer, settings: Any) -> None:
    """MEDIA is not served: a job's output goes out through the jobs API, behind the job's access check."""
    settings.EXPORT_SYNC_MAX_FEATURES = 1
    job_url = f"/api/v1/jobs/{export(team, layer, 'format=geojson').data['id']}/"
    polled = team.client().get(job_url).json()
    assert polled["output_url"] == f"{job_url}download/"
    data = json.loads(body(team.client().get(polled["output_url"])))
    assert len(data["features"]) == 5
    assert team.client("outsider").get(polled["output_url"]).status_code == 404
    assert team.client("viewer").get(polled["output_url"]).status_code == 404
