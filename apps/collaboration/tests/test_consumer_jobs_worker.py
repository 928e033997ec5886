"""A real Celery worker's import reaches the sockets of the map showing its layer, live and on commit."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.collaboration.tests.conftest import open_socket, run
from apps.imports.tests import files
from apps.layers.models import Feature
from apps.workspaces.models import Role
from celery_app import app as celery_app
from conftest import client_for
from tests.factories import MapLayerFactory, MembershipFactory
from tests.workers import start_celery_worker, stop_worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def imports_worker(transactional_db: None, settings, tmp_path: Path) -> Iterator[subprocess.Popen]:
    settings.MEDIA_ROOT = tmp_path / "media"
    celery_app.control.purge()  # earlier tests may have queued jobs that no longer exist
    worker = start_celery_worker(queues="imports", log=tmp_path / "worker.log", MEDIA_ROOT=str(settings.MEDIA_ROOT))
    yield worker
    stop_worker(worker)


def test_an_append_import_run_by_a_worker_is_seen_running_then_succeeded_by_everyone_on_the_map(
    imports_worker: subprocess.Popen,
) -> None:
    entry = MapLayerFactory(layer__geometry_type="point")
    editor = MembershipFactory(workspace=entry.map.workspace, role=Role.EDITOR).user
    colleague = MembershipFactory(workspace=entry.map.workspace, role=Role.VIEWER).user
    upload = {
        "file": SimpleUploadedFile("points.geojson", files.geojson(files.point_features())),
        "workspace": entry.map.workspace.slug,
        "mode": "append",
        "layer": str(entry.layer.pk),
    }

    client = client_for(editor)

    async def scenario() -> None:
        watcher, _ = await open_socket(entry.map.pk, user=colleague)
        response = await sync_to_async(client.post)("/api/v1/imports/", upload, format="multipart")
        assert response.status_code == 202, response.data
        job_id = response.data["id"]
        running = await watcher.expect("job", timeout=60, job_id=job_id, status="running")
        done = await watcher.expect("job", timeout=60, job_id=job_id, status="succeeded")
        assert (running["kind"], running["layer"], running["error"]) == ("import", str(entry.layer.pk), None)
        assert (done["progress"], done["phase"]) == (100, "done")
        # Pushed on commit: the rows are there the moment anyone hears of it.
        assert await database_sync_to_async(_feature_count)(entry.layer) == len(files.point_features())
        await watcher.disconnect()

    run(scenario)


def _feature_count(layer: object) -> int:
    return Feature.objects.unscoped().filter(layer=layer).count()
