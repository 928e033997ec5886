"""The hostile corpus: each file is refused with a reason, quickly, and writes no feature."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import pytest

from apps.imports.loading import staging_tables_left
from apps.imports.tests import files
from apps.imports.tests.conftest import Team, feature_total, job_of, post_import
from apps.jobs.models import Job
from apps.layers.models import Layer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager")]


def _refused(team: Team, name: str, content: bytes, reason: str, **fields: str) -> None:
    """Refused at upload (400) or as a failed job; either way the reason is given and nothing is stored."""
    started = time.monotonic()
    response = post_import(team.client(), name, content, workspace=team.workspace.slug, name="Hostile", **fields)
    if response.status_code == 202:
        job = Job.objects.unscoped().get(pk=response.data["id"])
        assert job.status == "failed", job.result
        message = job.error
    else:
        assert response.status_code == 400, response.data
        message = response.data["detail"]
        assert not Job.objects.unscoped().exists()
    assert reason in message
    assert time.monotonic() - started < 2
    assert feature_total() == 0
    assert staging_tables_left() == []


def test_zip_bomb_is_refused_before_extraction(team: Team, media_root: Path) -> None:
    bomb = files.raw_zip([("data/huge.geojson", b"\x00" * (20 * 1024 * 1024))])
    _refused(team, "bomb.zip", bomb, "expands more than 250 times (a zip bomb?)")
    assert not list((media_root / "imports").glob("*/*")) if (media_root / "imports").exists() else True


def test_nested_archives_are_refused(team: Team) -> None:
    inner = files.raw_zip([("a.geojson", files.geojson(files.point_features()))])
    _refused(team, "nested.zip", files.raw_zip([("inner.zip", inner)]), "Archives inside archives are not accepted")


def test_path_traversal_member_is_refused(team: Team) -> None:
    evil = files.raw_zip([("../../evil.geojson", files.geojson(files.point_features()))])
    _refused(team, "evil.zip", evil, "whose path leaves the archive")


def test_absolute_member_path_is_refused(team: Team) -> None:
    evil = files.raw_zip([("/etc/cron.d/evil.geojson", files.geojson(files.point_features()))])
    _refused(team, "evil.zip", evil, "absolute path")


def test_symlink_member_is_refused(team: Team) -> None:
    evil = files.raw_zip([files.symlink_member("data/places.geojson", "/etc/passwd")])
    _refused(team, "link.zip", evil, "symbolic link")


def test_vrt_disguised_as_geojson_is_refused(team: Team) -> None:
    _refused(team, "places.geojson", files.VRT_READING_PASSWD, "GDAL VRT file")


def test_vrt_disguised_as_csv_is_refused(team: Team) -> None:
    _refused(team, "places.csv", files.VRT_READING_PASSWD, "GDAL VRT file")


def test_vrt_with_vsicurl_is_refused_by_extension_and_inside_a_zip(team: Team) -> None:
    _refused(team, "remote.vrt", files.VRT_VSICURL, "Files of this type cannot be imported")
    zipped = files.raw_zip([("remote.geojson", files.VRT_VSICURL)])
    _refused(team, "remote.zip", zipped, "GDAL VRT file")


def test_billion_laughs_kml_is_refused(team: Team) -> None:
    _refused(team, "lol.kml", files.BILLION_LAUGHS_KML, "DOCTYPE or entity declarations")


def test_gdal_prefixes_in_names_are_refused(team: Team) -> None:
    _refused(team, "GeoJSON:places.geojson", files.geojson(files.point_features()), "/vsi… or DRIVER:")
    _refused(team, "places.gpkg", b"SQLite format 3\x00", "/vsi… or DRIVER:", source_layer="/vsicurl/http://x/")


def test_shapefile_without_prj_fails_asking_for_srid(team: Team, tmp_path: Path) -> None:
    content = files.zipped_shapefile(tmp_path, files.point_features(), prj=False)
    _refused(team, "noprj.zip", content, "no coordinate reference system")


def test_shapefile_without_prj_imports_with_srid(team: Team, tmp_path: Path) -> None:
    content = files.zipped_shapefile(tmp_path, files.point_features(), prj=False)
    job = job_of(post_import(team.client(), "noprj.zip", content, workspace=team.workspace.slug, name="S", srid="3067"))
    assert job.status == "succeeded", job.error
    assert job.result["imported"] == 3


def test_projected_coordinates_labelled_wgs84_are_refused(team: Team) -> None:
    rows = [("Helsinki in metres", 385000.0, 6672000.0, 1, True, "2020-01-01")]
    _refused(
        team, "metres.geojson", files.geojson(files.point_features(rows)), "Coordinates out of range: is the CRS right?"
    )


def test_an_unknown_srid_is_refused(team: Team) -> None:
    _refused(
        team, "a.geojson", files.geojson(files.point_features()), "not a coordinate reference system", srid="999999"
    )


def test_overlapping_zip_entries_are_refused(team: Team) -> None:
    content = bytearray(files.raw_zip([("a.geojson", b"{}" * 10), ("b.geojson", b"{}" * 10)]))
    with zipfile.ZipFile(__import__("io").BytesIO(bytes(content))) as archive:
        first, second = archive.infolist()
    # Point the second central-directory entry at the first member's bytes.
    central = content.rfind(b"PK\x01\x02")
    offset_field = central + 42
    content[offset_field : offset_field + 4] = first.header_offset.to_bytes(4, "little")
    assert second.header_offset != first.header_offset
    _refused(team, "overlap.zip", bytes(content), "overlap")


def test_a_million_vertex_polygon_is_refused_before_repair_with_its_size(team: Team) -> None:
    job = job_of(
        post_import(
            team.client(), "huge.geojson", files.million_vertex_polygon(), workspace=team.workspace.slug, name="Huge"
        )
    )
    assert job.status == "failed"
    assert job.error == (
        "1 feature(s) have more than 500000 vertices (the largest has 1000000); "
        "simplify the geometry or split it before importing."
    )
    assert feature_total() == 0 and staging_tables_left() == []
    assert not Layer.objects.unscoped().exists()


def test_the_vertex_limit_is_per_feature_and_inclusive(team: Team, settings: object) -> None:
    settings.IMPORT_MAX_VERTICES_PER_FEATURE = 50  # type: ignore[attr-defined]
    at_limit = job_of(
        post_import(
            team.client(), "ok.geojson", files.million_vertex_polygon(50), workspace=team.workspace.slug, name="Ok"
        )
    )
    assert at_limit.status == "succeeded", at_limit.error
    assert at_limit.result["imported"] == 1
    over = job_of(
        post_import(
            team.client(), "big.geojson", files.million_vertex_polygon(51), workspace=team.workspace.slug, name="Big"
        )
    )
    assert over.status == "failed" and "more than 50 vertices (the largest has 51)" in over.error
    assert feature_total() == 1


def test_a_layer_name_ogr2ogr_would_read_as_an_option_is_refused(team: Team, tmp_path: Path) -> None:
    _refused(team, "two.gpkg", files.two_layer_geopackage(tmp_path), "Layer names starting with '-'", layers="-sql")
    kml = files.KML_WITH_FOLDERS.replace(b"<name>Parks</name>", b"<name>-sql</name>")
    _refused(team, "folders.kml", kml, "Layer names starting with '-' are not accepted ('-sql'", layers="*")
