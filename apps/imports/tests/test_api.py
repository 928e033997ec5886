"""POST /api/v1/imports/: who may import where, the size limit, and the 202."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.imports.tests import files
from apps.imports.tests.conftest import IMPORTS_URL, Team, job_of, layer_of, post_import
from apps.jobs.models import Job
from tests.factories import LayerFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db(transaction=True)
POINTS = files.geojson(files.point_features())


def test_upload_answers_202_with_a_queued_job_and_stores_the_file(team: Team, media_root: Path) -> None:
    response = post_import(team.client(), "places.geojson", POINTS, workspace=team.workspace.slug, name="Places")
    job = job_of(response)
    assert response.data["status"] == "queued" and response.data["kind"] == "import"
    assert job.params["file_name"] == "places.geojson" and job.params["file_size"] == len(POINTS)
    assert (media_root / job.params["file_path"]).read_bytes() == POINTS
    assert job.params["file_path"] == f"imports/{job.pk}/upload/source.geojson"


def test_a_viewer_cannot_import(team: Team, media_root: Path) -> None:
    response = post_import(team.client("viewer"), "places.geojson", POINTS, workspace=team.workspace.slug, name="x")
    assert response.status_code == 403
    assert not Job.objects.unscoped().exists()
    assert not any((media_root / "imports").glob("*")) if (media_root / "imports").exists() else True


def test_a_non_member_gets_404(team: Team) -> None:
    response = post_import(team.client("outsider"), "places.geojson", POINTS, workspace=team.workspace.slug, name="x")
    assert response.status_code == 404


def test_anonymous_gets_401(team: Team) -> None:
    from rest_framework.test import APIClient

    assert (
        post_import(APIClient(), "places.geojson", POINTS, workspace=team.workspace.slug, name="x").status_code == 401
    )


def test_a_viewer_cannot_append_to_a_layer_they_see(team: Team) -> None:
    layer = LayerFactory(workspace=team.workspace, is_global=True)
    response = post_import(
        team.client("viewer"), "p.geojson", POINTS, workspace=team.workspace.slug, mode="append", layer=str(layer.pk)
    )
    assert response.status_code == 403


def test_a_layer_of_another_workspace_is_not_found(team: Team) -> None:
    foreign = LayerFactory(workspace=WorkspaceFactory(), is_global=True)
    response = post_import(
        team.client("owner"), "p.geojson", POINTS, workspace=team.workspace.slug, mode="replace", layer=str(foreign.pk)
    )
    assert response.status_code == 404


def test_append_needs_a_layer_and_new_needs_a_name(team: Team) -> None:
    assert post_import(team.client(), "p.geojson", POINTS, workspace=team.workspace.slug, mode="append").data[
        "errors"
    ].keys() == {"layer"}
    assert post_import(team.client(), "p.geojson", POINTS, workspace=team.workspace.slug).data["errors"].keys() == {
        "name"
    }


def test_the_file_is_required_after_authorisation(team: Team) -> None:
    response = team.client().post(IMPORTS_URL, {"workspace": team.workspace.slug, "name": "x"}, format="json")
    assert response.status_code == 400 and "file" in response.data["errors"]


def test_an_oversize_upload_is_refused_with_413_and_nothing_kept(
    team: Team, settings: object, media_root: Path
) -> None:
    settings.IMPORT_MAX_BYTES = 100_000  # type: ignore[attr-defined]
    big = files.geojson(files.point_features() * 2000)
    assert len(big) > 100_000 + 64 * 1024
    response = post_import(team.client(), "big.geojson", big, workspace=team.workspace.slug, name="Big")
    assert response.status_code == 413 and "larger than the 100000 bytes" in response.data["detail"]
    assert not Job.objects.unscoped().exists()
    assert not any((media_root / "imports").glob("*")) if (media_root / "imports").exists() else True


def test_a_file_growing_past_the_limit_while_streaming_is_refused(
    team: Team, settings: object, media_root: Path
) -> None:
    settings.IMPORT_MAX_BYTES = 500_000  # type: ignore[attr-defined]
    big = files.geojson(files.point_features() * 1000)
    assert 500_000 < len(big) < 500_000 + 64 * 1024  # passes the Content-Length check, fails while streaming
    response = post_import(team.client(), "big.geojson", big, workspace=team.workspace.slug, name="Big")
    assert response.status_code == 413
    assert not any((media_root / "imports").glob("*")) if (media_root / "imports").exists() else True


@pytest.mark.usefixtures("eager")
def test_the_owner_can_import_and_reads_progress_through_jobs(team: Team) -> None:
    job = job_of(post_import(team.client("owner"), "p.geojson", POINTS, workspace=team.workspace.slug, name="P"))
    body = team.client("owner").get(f"/api/v1/jobs/{job.pk}/").json()
    assert body["status"] == "succeeded" and body["progress"] == 100
    assert body["result"]["imported"] == 3 and body["layer"] == str(layer_of(job).pk)
