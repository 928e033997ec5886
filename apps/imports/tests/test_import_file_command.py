"""The operators' command runs the same import service, in process."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from apps.imports.tests import files
from apps.imports.tests.conftest import Team, feature_rows
from apps.imports.tests.test_upsert import MONDAY, TUESDAY, listings_csv
from apps.jobs.models import Job
from apps.layers.models import Layer

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str) -> str:
    out = StringIO()
    call_command("import_file", *args, stdout=out)
    return out.getvalue()


def test_import_file_creates_a_layer_and_prints_the_counts(team: Team, tmp_path: Path) -> None:
    source = tmp_path / "places.geojson"
    source.write_bytes(files.geojson(files.point_features()))
    output = run(str(source), "--workspace", team.workspace.slug, "--user", team.editor.email)
    layer = Layer.objects.unscoped().get(workspace=team.workspace)
    assert layer.name == "places" and layer.feature_count == 3
    assert f"layer {layer.pk}" in output and "imported: 3" in output
    assert all(row["valid"] and row["srid"] == 4326 for row in feature_rows(layer))
    assert Job.objects.unscoped().get(layer=layer).created_by == team.editor


def test_import_file_upserts_by_key(team: Team, tmp_path: Path) -> None:
    monday, tuesday = tmp_path / "monday.csv", tmp_path / "tuesday.csv"
    monday.write_bytes(listings_csv(MONDAY))
    tuesday.write_bytes(listings_csv(TUESDAY))
    run(str(monday), "--workspace", team.workspace.slug, "--user", team.editor.email, "--name", "Listings")
    layer = Layer.objects.unscoped().get(workspace=team.workspace)
    output = run(
        str(tuesday), "--workspace", team.workspace.slug, "--user", team.editor.email, "--layer", str(layer.pk),
        "--mode", "upsert", "--key", "listing_id", "--delete-missing",
    )  # fmt: skip
    assert "inserted: 2" in output and "updated: 3" in output and "unchanged: 1" in output and "deleted: 1" in output
    assert Layer.objects.unscoped().get(pk=layer.pk).feature_count == 6


def test_import_file_refuses_a_viewer(team: Team, tmp_path: Path) -> None:
    source = tmp_path / "places.geojson"
    source.write_bytes(files.geojson(files.point_features()))
    with pytest.raises(CommandError, match="Viewers cannot import layers"):
        run(str(source), "--workspace", team.workspace.slug, "--user", team.viewer.email)
    assert not Layer.objects.unscoped().filter(workspace=team.workspace).exists()


def test_import_file_reports_a_failed_import(team: Team, tmp_path: Path) -> None:
    source = tmp_path / "empty.geojson"
    source.write_bytes(files.geojson([]))
    with pytest.raises(CommandError, match="no features"):
        run(str(source), "--workspace", team.workspace.slug, "--user", team.editor.email)


def test_import_file_names_a_missing_file(team: Team, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="No such file"):
        run(str(tmp_path / "nope.csv"), "--workspace", team.workspace.slug, "--user", team.editor.email)


def test_import_file_reads_several_layers_of_a_geopackage(team: Team, tmp_path: Path) -> None:
    source = tmp_path / "city.gpkg"
    source.write_bytes(files.geopackage_of_three_and_an_empty_layer(tmp_path))
    output = run(
        str(source), "--workspace", team.workspace.slug, "--user", team.editor.email, "--layers", "routes", "areas"
    )
    layers = {layer.name: layer for layer in Layer.objects.unscoped().filter(workspace=team.workspace)}
    assert sorted(layers) == ["city — areas", "city — routes"]
    assert f"layer {layers['city — areas'].pk} 'city — areas': 1 of 1" in output
    assert "imported: 2" in output
    assert all(row["valid"] and row["srid"] == 4326 for layer in layers.values() for row in feature_rows(layer))
