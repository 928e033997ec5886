"""`make bench-import`: imports end to end, through the API, a real Celery worker and GDAL.

Generates (once per seed and size, into var/bench/data/) BENCH_POINTS (1,000,000)
real-estate listings around real cities as CSV and as GeoPackage, and BENCH_POLYGONS
(100,000) building footprints as a zipped Shapefile. For each file: starts a fresh
Celery worker (queues imports,tiling) next to uvicorn, uploads the file to
POST /api/v1/imports/ with an API token, polls the job, and measures

- seconds: from the first byte of the upload to the job's success,
- peak_worker_rss_mb: the worker's process tree (worker + ogr2ogr) sampled from /proc every 100 ms,
  until the layer's tiling job (if any) is done too,
- first_tile_s: from the first byte of the upload until the tile a viewer shows first answers 200:
  for points the smallest tile holding the whole extent ("zoom to layer", clusters), for building
  footprints (sub-pixel at world zooms) the z12 tile over the most populous city.

Prints a table (with the time spent per job phase) and writes var/bench/import.json.
BENCH_DATASETS=points_csv,polygons_shp picks datasets. A benchmark: it asserts nothing.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
# Its own broker database: a `make run` worker must not take the benchmark's jobs.
_REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:56379").rstrip("/")
os.environ.setdefault("CELERY_BROKER_URL", f"{_REDIS}/7")
sys.path.insert(0, str(ROOT))

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from apps.accounts.services import api_token_create  # noqa: E402
from apps.jobs.models import Job, JobKind  # noqa: E402
from apps.layers import storage  # noqa: E402
from apps.layers.models import Layer  # noqa: E402
from apps.tiles.services import layer_needs_aggregates  # noqa: E402
from tests.benchmarks import import_data  # noqa: E402
from tests.benchmarks.common import PORT, bench_owner, bench_workspace, process_tree, rss_bytes, server  # noqa: E402
from tests.workers import start_celery_worker, stop_worker  # noqa: E402

POINTS = int(os.environ.get("BENCH_POINTS", "1000000"))
POLYGONS = int(os.environ.get("BENCH_POLYGONS", "100000"))
OUT = ROOT / "var" / "bench" / "import.json"
LOGS = ROOT / "var" / "bench" / "logs"
LAYER_PREFIX = "Import bench"
JOB_TIMEOUT_S = 30 * 60
SAMPLE_S = 0.1
FIRST_TILE_TIMEOUT_S = 180


# --- measuring ------------------------------------------------------------------------------


class PeakRss(threading.Thread):
    """The largest summed RSS of a process and its descendants, sampled every 100 ms until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self._stop_event = pid, 0, threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, rss_bytes(process_tree(self.pid)))
            self._stop_event.wait(SAMPLE_S)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


@dataclass
class Run:
    dataset: str
    features: int = 0
    seconds: float | None = None
    first_tile_s: float | None = None
    peak_rss: int = 0
    phases: dict[str, float] = field(default_factory=dict)
    tiling_s: float | None = None
    repaired: int = 0
    skipped: int = 0
    error: str = ""


class Api:
    def __init__(self, token: str) -> None:
        self.headers = {"Authorization": f"Token {token}"}

    def _conn(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", PORT, timeout=600)

    def get(self, path: str) -> tuple[int, bytes]:
        conn = self._conn()
        try:
            conn.request("GET", path, headers=self.headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def upload(self, path: Path, fields: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """A multipart POST streamed from disk (the file is never held in memory)."""
        boundary = uuid.uuid4().hex
        head = "".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            for name, value in fields.items()
        )
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        tail = f"\r\n--{boundary}--\r\n".encode()

        def body() -> Any:
            yield head.encode()
            with path.open("rb") as source:
                while chunk := source.read(1024 * 1024):
                    yield chunk
            yield tail

        length = len(head.encode()) + path.stat().st_size + len(tail)
        headers = {
            **self.headers,
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(length),
        }
        conn = self._conn()
        try:
            conn.request("POST", "/api/v1/imports/", body=body(), headers=headers)
            response = conn.getresponse()
            body = response.read()
            try:
                return response.status, json.loads(body or b"{}")
            except ValueError:
                return response.status, {"body": body[:500].decode(errors="replace")}
        finally:
            conn.close()


# --- one dataset ----------------------------------------------------------------------------


def _poll_job(api: Api, job_id: str, started: float, run: Run) -> dict[str, Any]:
    """Poll until the job finishes, noting when each phase began (seconds from the upload's start)."""
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        status, body = api.get(f"/api/v1/jobs/{job_id}/")
        job = json.loads(body) if status == 200 else {}
        if job.get("status") in ("succeeded", "failed", "cancelled"):
            return job
        phase = job.get("phase") or "?"
        if phase not in run.phases:
            run.phases[phase] = time.perf_counter() - started
        time.sleep(SAMPLE_S)
    return {"status": "timeout", "error": f"no result after {JOB_TIMEOUT_S} s"}


def _first_tile(api: Api, layer_id: str, tile: tuple[int, int, int], started: float) -> float | None:
    z, x, y = tile
    deadline = time.monotonic() + FIRST_TILE_TIMEOUT_S
    while time.monotonic() < deadline:
        status, _ = api.get(f"/tiles/layers/{layer_id}/{z}/{x}/{y}.mvt")
        if status == 200:
            return time.perf_counter() - started
        time.sleep(SAMPLE_S)
    return None


def _wait_for_tiling(layer_id: str) -> float | None:
    """The tiling job the import queued (large point layers), once finished: its run time.

    Waited for so that it neither runs during the next dataset's import nor outlives its worker.
    """
    layer = Layer.objects.unscoped().get(pk=layer_id)
    if not layer_needs_aggregates(layer):
        return None
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        job = Job.objects.unscoped().filter(kind=JobKind.TILING, layer_id=layer_id).order_by("-created_at").first()
        if job is not None and job.is_finished:
            return (job.finished_at - job.started_at).total_seconds() if job.started_at else None
        time.sleep(0.5)
    return None


def _worker(dataset: str) -> Any:
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"worker-{dataset}.log"
    worker = start_celery_worker(queues="imports,tiling", log=log, DJANGO_SETTINGS_MODULE="config.settings.local")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and " ready." not in log.read_text(errors="replace"):
        time.sleep(0.2)
    return worker


def run_dataset(api: Api, dataset: import_data.Dataset) -> Run:
    run = Run(dataset.name)
    worker = _worker(dataset.name)
    sampler = PeakRss(worker.pid)
    sampler.start()
    try:
        started = time.perf_counter()
        run.phases["upload"] = 0.0
        fields = {"workspace": "bench", "mode": "new", "name": f"{LAYER_PREFIX} {dataset.name}"}
        status, body = api.upload(dataset.path, fields)
        if status != 202:
            run.error = f"upload answered {status}: {body}"
            return run
        job = _poll_job(api, body["id"], started, run)
        if job["status"] != "succeeded":
            run.error = f"job {job['status']}: {job.get('error')}"
            return run
        run.seconds = time.perf_counter() - started
        run.phases["(succeeded)"] = run.seconds
        run.features = job["result"]["imported"]
        run.repaired, run.skipped = job["result"]["repaired"], sum(job["result"]["skipped"].values())
        layer_id = job["result"]["layer"]
        run.first_tile_s = _first_tile(api, layer_id, dataset.first_tile, started)
        run.tiling_s = _wait_for_tiling(layer_id)
    finally:
        run.peak_rss = sampler.stop()
        stop_worker(worker)
    return run


def _clean_previous_layers() -> None:
    """Drop earlier runs' layers, so every run inserts into a table of the same size."""
    layers = list(Layer.objects.unscoped().filter(workspace__slug="bench", name__startswith=LAYER_PREFIX))
    with connection.cursor() as cursor:
        for layer in layers:
            cursor.execute("DELETE FROM layers_feature WHERE layer_id = %s", [layer.pk])
            cursor.execute("DELETE FROM tiles_pointcluster WHERE layer_id = %s", [layer.pk])
            layer.delete()
        # The partitions of earlier runs' big layers (apps/layers/storage.py).
        storage.unused_partitions_drop()
        if layers:
            cursor.execute("VACUUM ANALYZE layers_feature")


# --- report ---------------------------------------------------------------------------------


def _row(run: Run) -> dict[str, Any]:
    per_s = round(run.features / run.seconds) if run.seconds else None
    return {
        "dataset": run.dataset,
        "features": run.features,
        "seconds": round(run.seconds, 2) if run.seconds else None,
        "features_per_s": per_s,
        "peak_worker_rss_mb": round(run.peak_rss / 1024**2, 1),
        "first_tile_s": round(run.first_tile_s, 2) if run.first_tile_s else None,
    }


def _phases(run: Run) -> str:
    """How long each job phase lasted, from the moments the poller first saw it."""
    marks = sorted(run.phases.items(), key=lambda item: item[1])
    spans = [f"{name} {end - start:.1f}" for (name, start), (_, end) in itertools.pairwise(marks)]
    tiling = f"; tiling job {run.tiling_s:.1f} s" if run.tiling_s is not None else ""
    return ", ".join(spans) + tiling


def _print(run: Run, row: dict[str, Any]) -> None:
    if run.error:
        print(f"{run.dataset:<22} FAILED: {run.error}", flush=True)
        return
    print(
        f"{row['dataset']:<22} {row['features']:>9,} features  {row['seconds']:>7} s  "
        f"{row['features_per_s']:>7,}/s  peak RSS {row['peak_worker_rss_mb']:>6} MB  "
        f"first tile {row['first_tile_s']} s  repaired {run.repaired}  skipped {run.skipped}\n"
        f"{'':<22} phases (s): {_phases(run)}",
        flush=True,
    )


def main() -> None:
    owner = bench_owner()
    bench_workspace(owner)
    token, key = api_token_create(user=owner, name="bench-import")
    api = Api(key)
    wanted = set(filter(None, os.environ.get("BENCH_DATASETS", "").split(",")))
    datasets = [d for d in import_data.datasets(points=POINTS, polygons=POLYGONS) if not wanted or d.kind in wanted]
    server_process = server()
    results = []
    try:
        for dataset in datasets:
            _clean_previous_layers()
            run = run_dataset(api, dataset)
            row = _row(run)
            _print(run, row)
            results.append(row)
    finally:
        server_process.terminate()
        server_process.wait(timeout=30)
        token.delete()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"results": results}, indent=1))
    print(f"[bench] wrote {OUT}")


if __name__ == "__main__":
    main()
