"""The tiling job on a real Celery worker and real Redis, scheduled by a feature edit."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.gis.geos import Point
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from apps.imports.services import import_execute
from apps.jobs.models import Job
from apps.layers.models import Layer
from apps.tiles import services
from apps.tiles.aggregates import precomputed_version
from apps.workspaces.tenancy import workspace_scope
from celery_app import app as celery_app
from conftest import client_for
from tests.factories import FeatureFactory, LayerFactory, MembershipFactory
from tests.workers import start_celery_worker, stop_worker, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _edit_then_run_tiling(layer: Layer, client, log: Path, **env: str) -> Job:
    """Add a point through the API with a real tiling worker running; the tiling job it queued, succeeded."""
    worker = start_celery_worker(queues="tiling", log=log, **env)
    try:
        point = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [24.5, 60.5]}, "properties": {}}
        assert client.post(f"/api/v1/layers/{layer.pk}/features/", point, format="json").status_code == 201
        job = Job.objects.for_workspace(layer.workspace_id).get(kind="tiling", layer=layer)
        wait_until(lambda: Job.objects.unscoped().get(pk=job.pk).is_finished, timeout=60, what="tiling job finished")
    finally:
        stop_worker(worker)
    job.refresh_from_db()
    assert job.status == "succeeded", (job.error, log.read_text()[-2000:])
    return job


def test_an_edit_to_a_large_point_layer_queues_a_tiling_job_that_a_worker_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "DEBOUNCE_SECONDS", 0)
    celery_app.control.purge()
    layer = LayerFactory(geometry_type="point", is_global=True, style_config={"cluster_max_zoom": 6})
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO layers_feature (created_at, updated_at, workspace_id, layer_id, geom, properties, version)
            SELECT now(), now(), %s, %s, ST_SetSRID(ST_MakePoint(24 + random(), 60 + random()), 4326), '{}', 1
            FROM generate_series(1, 6000)
            """,
            [layer.workspace_id, layer.pk],
        )
    Layer.objects.for_workspace(layer.workspace_id).filter(pk=layer.pk).update(feature_count=6000)
    cache.delete(f"tiling:pending:{layer.pk}")
    editor = MembershipFactory(workspace=layer.workspace, role="editor").user
    _edit_then_run_tiling(layer, client_for(editor), tmp_path / "worker.log")
    layer.refresh_from_db()
    state = precomputed_version(layer)
    assert state is not None and state.max_zoom == 6 and state.cells > 0


def test_importing_a_large_point_file_queues_the_tiling_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "DEBOUNCE_SECONDS", 3600)  # queued, not run: the schedule is what we check
    member = MembershipFactory(role="editor")
    rows = "\n".join(f"{24 + i % 100 / 100},{60 + i // 100 / 100},{i}" for i in range(6000))
    upload = SimpleUploadedFile("listings.csv", f"lon,lat,price\n{rows}\n".encode(), content_type="text/csv")
    response = client_for(member.user).post(
        "/api/v1/imports/", {"workspace": member.workspace.slug, "name": "Listings", "file": upload}
    )
    assert response.status_code == 202, response.json()
    job = Job.objects.unscoped().get(pk=response.json()["id"])
    with workspace_scope(job.workspace_id):
        import_execute(job=job)
    tiling = Job.objects.unscoped().filter(kind="tiling", workspace_id=job.workspace_id)
    assert tiling.count() == 1 and tiling.get().layer.feature_count == 6000


def test_a_tile_archive_export_runs_on_a_worker_of_the_tiling_queue(tmp_path: Path, settings: object) -> None:
    """Routing and the task end to end: only a `tiling` worker runs, and the archive it writes downloads."""
    from apps.tiles.tests.test_archives import pmtiles_tiles

    media = tmp_path / "media"
    settings.MEDIA_ROOT = media  # type: ignore[attr-defined]
    celery_app.control.purge()
    layer = LayerFactory(geometry_type="point", is_global=True, attribute_schema={"rank": "integer"})
    for i in range(3):
        FeatureFactory(layer=layer, geom=Point(24.94 + i / 100, 60.17, srid=4326), properties={"rank": i})
    viewer = MembershipFactory(workspace=layer.workspace, role="viewer").user
    worker = start_celery_worker(queues="tiling", log=tmp_path / "worker.log", MEDIA_ROOT=str(media))
    try:
        response = client_for(viewer).get(f"/api/v1/layers/{layer.pk}/export/?format=pmtiles&maxzoom=10&rank__gte=1")
        assert response.status_code == 202, response.json()
        job = Job.objects.unscoped().get(pk=response.json()["id"])
        wait_until(lambda: Job.objects.unscoped().get(pk=job.pk).is_finished, timeout=60, what="tile archive finished")
    finally:
        stop_worker(worker)
    job.refresh_from_db()
    assert job.status == "succeeded", (job.error, (tmp_path / "worker.log").read_text()[-2000:])
    assert job.attempts == 1 and job.celery_task_id and job.result["tiles"] == 11
    archive = tmp_path / "got.pmtiles"
    archive.write_bytes(b"".join(client_for(viewer).get(f"/api/v1/jobs/{job.pk}/download/").streaming_content))
    _header, _metadata, tiles = pmtiles_tiles(archive)
    assert len(tiles) == 11 and {z for z, _x, _y in tiles} == set(range(11))


def test_the_worker_exports_point_columns_that_the_tiles_then_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings
) -> None:
    """Point table and point columns built by a real worker (into the shared columns root), then a filtered
    cluster tile over HTTP comes from the columns and equals the one computed from the features."""
    from unittest import mock

    from apps.tiles import mvt, pointcolumns
    from apps.tiles.tests.test_pointtable import _decoded
    from apps.tiles.tests.test_tiles import tile_url

    monkeypatch.setattr(services, "DEBOUNCE_SECONDS", 0)
    settings.TILES_POINT_TABLE_MIN_FEATURES = 1000
    settings.TILES_POINT_COLUMNS_ROOT = str(tmp_path / "columns")
    celery_app.control.purge()
    layer = LayerFactory(
        geometry_type="point",
        is_global=True,
        attribute_schema={"price": "integer", "status": "string"},
        style_config={"cluster_max_zoom": 6, "cluster_properties": ["price"]},
    )
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO layers_feature (created_at, updated_at, workspace_id, layer_id, geom, properties, version)
            SELECT now(), now(), %s, %s, ST_SetSRID(ST_MakePoint(24 + (i %% 97) * 0.01, 60 + (i %% 89) * 0.01), 4326),
                   jsonb_build_object('price', 1000 * (i %% 40), 'status', (ARRAY['active', 'sold'])[i %% 2 + 1]), 1
            FROM generate_series(1, 6000) AS i
            """,
            [layer.workspace_id, layer.pk],
        )
    Layer.objects.for_workspace(layer.workspace_id).filter(pk=layer.pk).update(feature_count=6000)
    cache.delete(f"tiling:pending:{layer.pk}")
    editor = MembershipFactory(workspace=layer.workspace, role="editor").user
    client = client_for(editor)
    url = tile_url(layer, 5, lon=24.4, lat=60.4, query="price__gte=20000&status=active")
    job = _edit_then_run_tiling(
        layer,
        client,
        tmp_path / "worker.log",
        TILES_POINT_TABLE_MIN_FEATURES="1000",
        TILES_POINT_COLUMNS_ROOT=settings.TILES_POINT_COLUMNS_ROOT,
    )
    assert job.result["points"] == 6001 and job.result["point_columns"] == 6001
    with mock.patch.object(mvt, "_point_table_clusters", return_value=None):
        expected = _decoded(client.get(url).content)  # a filtered tile computed from the features
    cache.clear()
    with mock.patch.object(pointcolumns, "_grouped", wraps=pointcolumns._grouped) as grouped:
        assert _decoded(client.get(url).content) == expected and expected
        assert grouped.called
