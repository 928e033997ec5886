"""Multi-layer sources: every layer or the chosen ones, one Meridian layer each, all together or none."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.imports.loading import staging_tables_left
from apps.imports.tests import files
from apps.imports.tests.conftest import Team, feature_rows, feature_total, job_of, post_import
from apps.jobs.models import Job
from apps.layers.models import Layer
from tests.factories import LayerFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager")]


def _layers_by_source(job: Job) -> dict[str, Layer]:
    """The job's layers keyed by the source layer each came from, checking the result lists each one."""
    assert job.status == "succeeded", job.error
    by_source = {entry["source_layer"]: entry for entry in job.result["layer_results"]}
    assert job.result["layers"] == [entry["layer"] for entry in job.result["layer_results"]]
    layers = {str(layer.pk): layer for layer in Layer.objects.unscoped().filter(pk__in=job.result["layers"])}
    return {source: layers[entry["layer"]] for source, entry in by_source.items()}


def _assert_clean_4326(layer: Layer) -> list[dict]:
    rows = feature_rows(layer)
    assert len(rows) == layer.feature_count > 0
    assert all(row["srid"] == 4326 and row["valid"] for row in rows)
    return rows


def test_every_layer_of_a_geopackage_becomes_a_layer_and_the_empty_one_is_skipped(team: Team, tmp_path: Path) -> None:
    content = files.geopackage_of_three_and_an_empty_layer(tmp_path)
    job = job_of(
        post_import(team.client(), "four.gpkg", content, workspace=team.workspace.slug, name="City", layers="*")
    )
    layers = _layers_by_source(job)

    assert list(layers) == ["places", "areas", "routes"]  # the file's order; "empty" holds nothing
    assert {source: layer.name for source, layer in layers.items()} == {
        "places": "City — places",
        "areas": "City — areas",
        "routes": "City — routes",
    }
    places, areas, routes = layers["places"], layers["areas"], layers["routes"]
    assert (places.geometry_type, areas.geometry_type, routes.geometry_type) == ("point", "polygon", "line")
    assert {r["properties"]["name"] for r in _assert_clean_4326(places)} == {"Senate Square", "Kamppi", "Kallio Church"}
    assert places.attribute_schema == {"name": "string", "year": "integer", "open": "boolean", "since": "date"}
    [area] = _assert_clean_4326(areas)
    assert area["properties"] == {"name": "square"} and round(area["x"], 3) == 24.905  # reprojected from 3857
    [route] = _assert_clean_4326(routes)
    assert route["properties"] == {"route": "Walk", "km": 2.5}
    assert [(e["source_layer"], e["read"], e["imported"]) for e in job.result["layer_results"]] == [
        ("places", 3, 3),
        ("areas", 1, 1),
        ("routes", 1, 1),
    ]
    assert (job.result["read"], job.result["imported"], job.result["source_layer"]) == (5, 5, None)
    assert staging_tables_left() == []


def test_chosen_layers_of_a_geopackage_are_imported_and_the_others_not(team: Team, tmp_path: Path) -> None:
    content = files.geopackage_of_three_and_an_empty_layer(tmp_path)
    response = post_import(
        team.client(), "four.gpkg", content, workspace=team.workspace.slug, name="Two", layers=["routes", "places"]
    )
    layers = _layers_by_source(job_of(response))

    assert list(layers) == ["places", "routes"]
    assert layers["places"].feature_count == 3 and layers["routes"].feature_count == 1
    for layer in layers.values():
        _assert_clean_4326(layer)
    assert Layer.objects.unscoped().filter(workspace=team.workspace).count() == 2


def test_one_chosen_layer_keeps_the_requested_name(team: Team, tmp_path: Path) -> None:
    content = files.geopackage_of_three_and_an_empty_layer(tmp_path)
    job = job_of(
        post_import(team.client(), "four.gpkg", content, workspace=team.workspace.slug, name="Walks", layers="routes")
    )
    [layer] = _layers_by_source(job).values()
    assert layer.name == "Walks" and job.result["source_layer"] == "routes"
    assert _assert_clean_4326(layer)[0]["type"] == "LINESTRING"


def test_one_bad_layer_fails_the_whole_job_naming_it_and_no_layer_appears(team: Team, tmp_path: Path) -> None:
    content = files.geopackage_with_a_layer_in_metres_labelled_degrees(tmp_path)
    job = job_of(post_import(team.client(), "bad.gpkg", content, workspace=team.workspace.slug, name="X", layers="*"))

    assert job.status == "failed"
    assert job.error.startswith("Layer 'metres': Coordinates out of range")
    assert not Layer.objects.unscoped().filter(workspace=team.workspace).exists()
    assert feature_total() == 0 and staging_tables_left() == []


def test_a_named_layer_the_file_lacks_fails_listing_the_layers_it_has(team: Team, tmp_path: Path) -> None:
    content = files.geopackage_of_three_and_an_empty_layer(tmp_path)
    response = post_import(
        team.client(), "four.gpkg", content, workspace=team.workspace.slug, name="X", layers=["places", "nope"]
    )
    job = job_of(response)
    assert job.status == "failed"
    assert job.error == "The file has no layer 'nope'; it has: places, areas, routes, empty."
    assert feature_total() == 0


def test_a_named_empty_layer_fails_the_job(team: Team, tmp_path: Path) -> None:
    content = files.geopackage_of_three_and_an_empty_layer(tmp_path)
    job = job_of(
        post_import(team.client(), "four.gpkg", content, workspace=team.workspace.slug, name="X", layers="empty")
    )
    assert job.status == "failed" and job.error == "The layer 'empty' holds no features."
    assert not Layer.objects.unscoped().filter(workspace=team.workspace).exists()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"mode": "append", "layers": ["places", "areas"]}, "An import in mode append changes one layer"),
        ({"mode": "replace", "layers": "*"}, "An import in mode replace changes one layer"),
        ({"layers": "places", "source_layer": "places"}, "either source_layer or layers, not both"),
        ({"layers": ["*", "places"]}, "'*' means every layer; send it alone."),
        ({"layers": ["GPKG:/etc/passwd"]}, "/vsi… or DRIVER:"),
    ],
)
def test_layer_options_that_cannot_work_are_refused_with_400(
    team: Team, tmp_path: Path, fields: dict, message: str
) -> None:
    target = LayerFactory(workspace=team.workspace, created_by=team.editor)
    response = post_import(
        team.client(),
        "two.gpkg",
        files.two_layer_geopackage(tmp_path),
        workspace=team.workspace.slug,
        name="X",
        layer=str(target.pk),
        **fields,
    )
    assert response.status_code == 400, response.data
    assert message in response.data["detail"] and list(response.data["errors"]) == ["layers"]
    assert not Job.objects.unscoped().exists()


def test_layers_of_a_single_layer_format_are_refused_with_400(team: Team) -> None:
    content = files.geojson(files.point_features())
    response = post_import(team.client(), "p.geojson", content, workspace=team.workspace.slug, name="X", layers="*")
    assert response.status_code == 400
    assert "A GeoJSON file holds one layer" in response.data["detail"] and list(response.data["errors"]) == ["layers"]
    assert not Job.objects.unscoped().exists()


def test_append_from_one_chosen_layer_of_a_geopackage_still_works(team: Team, tmp_path: Path) -> None:
    first = post_import(
        team.client(), "p.geojson", files.geojson(files.point_features()), workspace=team.workspace.slug, name="P"
    )
    layer_id = job_of(first).result["layer"]
    job = job_of(
        post_import(
            team.client(),
            "two.gpkg",
            files.two_layer_geopackage(tmp_path),
            workspace=team.workspace.slug,
            mode="append",
            layer=layer_id,
            layers="places",
        )
    )
    [layer] = _layers_by_source(job).values()
    assert str(layer.pk) == layer_id and layer.feature_count == 6
    _assert_clean_4326(layer)


# --- GPX and KML / KMZ ---------------------------------------------------------------------------


def test_gpx_yields_its_waypoints_and_tracks_as_two_layers(team: Team) -> None:
    job = job_of(post_import(team.client(), "walk.gpx", files.GPX, workspace=team.workspace.slug, name="Walk"))
    layers = _layers_by_source(job)

    # routes is empty and skipped; track_points repeat the track's vertices and are read only when named.
    assert list(layers) == ["waypoints", "tracks"]
    waypoints, tracks = layers["waypoints"], layers["tracks"]
    assert (waypoints.name, waypoints.geometry_type, tracks.name, tracks.geometry_type) == (
        "Walk — waypoints",
        "point",
        "Walk — tracks",
        "line",
    )
    rows = _assert_clean_4326(waypoints)
    senate = next(r for r in rows if r["properties"]["name"] == "Senate Square")
    assert senate["properties"]["ele"] == 12.5 and (round(senate["x"], 4), round(senate["y"], 4)) == (24.9525, 60.1694)
    assert {r["properties"]["name"] for r in rows} == {"Senate Square", "Kamppi"}
    [track] = _assert_clean_4326(tracks)
    assert track["properties"]["name"] == "Morning walk" and track["type"] == "MULTILINESTRING"


def test_gpx_track_points_are_read_when_named(team: Team) -> None:
    job = job_of(
        post_import(
            team.client(), "walk.gpx", files.GPX, workspace=team.workspace.slug, name="Pts", source_layer="track_points"
        )
    )
    [layer] = _layers_by_source(job).values()
    rows = _assert_clean_4326(layer)
    assert sorted(r["properties"]["ele"] for r in rows) == [5, 7, 9]


def test_kmz_folders_become_layers_through_the_archive_checks(team: Team) -> None:
    content = files.kmz(files.KML_WITH_FOLDERS)
    job = job_of(post_import(team.client(), "city.kmz", content, workspace=team.workspace.slug, name="KMZ", layers="*"))
    layers = _layers_by_source(job)

    assert job.result["format"] == "kml"
    assert list(layers) == ["Sights", "Parks"]
    assert {r["properties"]["Name"] for r in _assert_clean_4326(layers["Sights"])} == {"Senate Square", "Kallio Church"}
    [park] = _assert_clean_4326(layers["Parks"])
    assert park["properties"]["Name"] == "Esplanadi" and park["type"] == "POLYGON"
    assert layers["Parks"].geometry_type == "polygon" and layers["Sights"].geometry_type == "point"


def test_kmz_with_one_placemark_folder_is_a_single_layer(team: Team) -> None:
    job = job_of(
        post_import(team.client(), "p.kmz", files.kmz(files.SIMPLE_KML), workspace=team.workspace.slug, name="K")
    )
    [layer] = _layers_by_source(job).values()
    assert layer.name == "K"
    assert {r["properties"]["Name"] for r in _assert_clean_4326(layer)} == {"Senate Square", "Kamppi"}


def test_kmz_with_a_path_traversal_member_is_refused(team: Team) -> None:
    evil = files.raw_zip([("../doc.kml", files.SIMPLE_KML)])
    response = post_import(team.client(), "evil.kmz", evil, workspace=team.workspace.slug, name="K")
    assert response.status_code == 400 and "whose path leaves the archive" in response.data["detail"]
    assert not Job.objects.unscoped().exists()
