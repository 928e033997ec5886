"""A real Celery worker on real Redis runs imports end to end, and survives being killed mid-load."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from apps.imports.loading import staging_tables_left
from apps.imports.tests import files
from apps.imports.tests.conftest import Team, feature_rows, feature_total, job_of, layer_of, post_import
from apps.imports.tests.test_osm import HELSINKI_PBF
from apps.jobs.models import Job
from apps.layers import storage
from apps.layers.models import Layer
from celery_app import app as celery_app
from tests import http_servers
from tests.http_servers import local_server
from tests.workers import start_celery_worker, stop_worker

pytestmark = pytest.mark.django_db(transaction=True)
WorkerFactory = Callable[..., subprocess.Popen]


@pytest.fixture
def start_worker(transactional_db: None, media_root: Path, tmp_path: Path) -> Iterator[WorkerFactory]:
    celery_app.control.purge()  # earlier tests may have queued jobs that no longer exist
    workers: list[subprocess.Popen] = []

    def start(app: str = "celery_app", **env: str) -> subprocess.Popen:
        log = tmp_path / f"worker{len(workers)}.log"
        worker = start_celery_worker(queues="imports", log=log, app=app, MEDIA_ROOT=str(media_root), **env)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        stop_worker(worker)


def _wait_for(job: Job, predicate: Callable[[Job], bool], timeout: float = 60) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if predicate(job):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job.pk} still {job.status} / {job.phase} after {timeout}s")


def test_a_real_worker_runs_an_upload_to_a_finished_layer(team: Team, start_worker: WorkerFactory) -> None:
    start_worker()
    response = post_import(
        team.client(),
        "places.geojson",
        files.geojson(files.point_features()),
        workspace=team.workspace.slug,
        name="Via worker",
    )
    job = _wait_for(job_of(response), lambda j: j.is_finished)
    layer = layer_of(job)
    rows = feature_rows(layer)
    assert len(rows) == 3 and all(r["srid"] == 4326 and r["valid"] for r in rows)
    assert job.attempts == 1 and job.celery_task_id
    _wait_until_no_staging_tables()  # the worker drops them just after the job's commit


def test_a_real_worker_downloads_a_url_reporting_progress_then_imports_it(
    team: Team, start_worker: WorkerFactory, settings: object
) -> None:
    settings.FETCH_ALLOWED_NETWORKS = ["127.0.0.1/32"]  # type: ignore[attr-defined]  # the request-time check
    start_worker(FETCH_ALLOWED_NETWORKS="127.0.0.1/32")
    with local_server() as server:
        server.routes["/places.geojson"] = http_servers.slowly(files.geojson(files.point_features()), pieces=4, pause=1)
        response = team.client().post(
            "/api/v1/imports/",
            {"url": server.url("/places.geojson"), "workspace": team.workspace.slug, "name": "From a URL"},
            format="json",
        )
        job = _wait_for(job_of(response), lambda j: j.phase.startswith("downloading ") and j.phase.endswith("%"))
        job = _wait_for(job, lambda j: j.is_finished)
    rows = feature_rows(layer_of(job))
    assert [r["properties"]["name"] for r in rows] == ["Senate Square", "Kamppi", "Kallio Church"]
    assert len(server.requests) == 1 and job.attempts == 1


def test_a_real_worker_writes_a_large_export_to_the_job(
    team: Team, start_worker: WorkerFactory, media_root: Path, settings: object
) -> None:
    start_worker()
    response = post_import(
        team.client(), "places.geojson", files.geojson(files.point_features()), workspace=team.workspace.slug, name="E"
    )
    layer = layer_of(_wait_for(job_of(response), lambda j: j.is_finished))
    settings.EXPORT_SYNC_MAX_FEATURES = 2  # type: ignore[attr-defined]
    response = team.client().get(f"/api/v1/layers/{layer.pk}/export/?format=gpkg")
    assert response.status_code == 202 and response.data["kind"] == "export"
    job = _wait_for(Job.objects.unscoped().get(pk=response.data["id"]), lambda j: j.is_finished)
    assert job.status == "succeeded", job.error
    stored = media_root / job.output_file.name
    summary = subprocess.run(["ogrinfo", "-so", "-al", str(stored)], capture_output=True, text=True, check=True)  # noqa: S603, S607
    assert "Feature Count: 3" in summary.stdout and stored.name == "e.gpkg"


def _big_csv(rows: int) -> bytes:
    lines = ["id,lat,lon,label"] + [
        f"{i},{60 + (i % 1000) / 10000},{24.5 + (i // 1000) / 1000},p{i}" for i in range(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


def test_a_worker_killed_mid_load_leaves_nothing_and_the_redelivered_job_loads_once(
    team: Team, start_worker: WorkerFactory
) -> None:
    first = start_worker("apps.imports.tests.worker_app")
    response = post_import(team.client(), "many.csv", _big_csv(300_000), workspace=team.workspace.slug, name="Many")
    job = _wait_for(job_of(response), lambda j: j.phase in ("loading", "indexing") or j.is_finished, timeout=120)
    assert not job.is_finished, "the load finished before the worker could be killed; use a bigger file"
    time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait()

    assert feature_total() == 0
    assert not Layer.objects.unscoped().filter(workspace=team.workspace).exists()
    assert storage.stray_partition_tables() == []  # the killed attempt's own table went with its transaction

    start_worker("apps.imports.tests.worker_app")
    job = _wait_for(job, lambda j: j.is_finished, timeout=180)
    assert job.status == "succeeded", job.error
    assert job.attempts == 2
    layers = Layer.objects.unscoped().filter(workspace=team.workspace)
    assert layers.count() == 1
    assert layers.get().feature_count == 300_000 == feature_total()
    # Big enough for a partition of its own (IMPORTS_OWN_PARTITION_MIN_FEATURES): the path that was killed.
    bucket = layers.get().storage_bucket
    assert bucket != storage.SHARED_BUCKET and bucket in storage.partitions()
    _wait_until_no_staging_tables()  # the worker drops them just after the job's commit


def test_a_worker_killed_between_layers_of_a_multi_layer_import_leaves_no_layer_and_the_retry_loads_each_once(
    team: Team, start_worker: WorkerFactory
) -> None:
    first = start_worker("apps.imports.tests.worker_app")
    response = post_import(
        team.client(), "Helsinki.osm.pbf", HELSINKI_PBF.read_bytes(), workspace=team.workspace.slug, name="H"
    )
    # Past the first of three source layers (its share of the progress ends at 28 %): one layer is staged.
    job = _wait_for(job_of(response), lambda j: j.progress >= 28 or j.is_finished, timeout=120)
    assert not job.is_finished, "the import finished before the worker could be killed"
    first.send_signal(signal.SIGKILL)
    first.wait()

    assert feature_total() == 0
    assert not Layer.objects.unscoped().filter(workspace=team.workspace).exists()

    start_worker("apps.imports.tests.worker_app")
    job = _wait_for(job, lambda j: j.is_finished, timeout=180)
    assert job.status == "succeeded", job.error
    assert job.attempts == 2
    layers = Layer.objects.unscoped().filter(workspace=team.workspace)
    assert sorted(layers.values_list("name", "feature_count")) == [
        ("H — lines", 3817),
        ("H — multipolygons", 1068),
        ("H — points", 8045),
    ]
    assert feature_total() == 8045 + 3817 + 1068
    _wait_until_no_staging_tables()  # the worker drops them just after the job's commit


def _wait_until_no_staging_tables(timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while staging_tables_left() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert staging_tables_left() == []
