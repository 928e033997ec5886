"""`make bench-tiles-warm`: warm (Redis-cached) layer tiles at concurrency 4, as a browser asks.

Builds (once, fixed seed) a library layer of BENCH_WARM_POINTS listings around real cities,
starts uvicorn serving BENCH_APP (default config.asgi:application, the warm-tile route in
front of Django; config.asgi:django_asgi_app gives the "before" figure), signs the bench
owner in by session cookie, warms the tile cache with one pass, then replays the tiles
BENCH_WARM_ROUNDS times at c=4 and prints p50/p95 and the server's CPU per tile
(utime + stime of the uvicorn tree: less sensitive to the machine's load than latency).
Writes var/bench/tiles_warm.json. A benchmark: it asserts nothing.
"""

from __future__ import annotations

import json
import os
import random
import time
from typing import Any

from tests.benchmarks.common import (
    ROOT,
    SEED,
    bench_owner,
    bench_workspace,
    cities,
    cpu_seconds,
    listing,
    process_tree,
    replay,
    server,
    tile_of,
)

__all__ = ["main"]  # common (above) sets Django up before the models below are imported

from django.contrib.gis.geos import Point
from django.test import Client

from apps.accounts.models import User
from apps.layers.models import Feature, Layer
from apps.layers.services import layer_create
from apps.maps.selectors import actor_for

POINTS = int(os.environ.get("BENCH_WARM_POINTS", "20000"))
ROUNDS = int(os.environ.get("BENCH_WARM_ROUNDS", "20"))
APP = os.environ.get("BENCH_APP", "config.asgi:application")
CONCURRENCY = 4
ZOOMS = (8, 10, 12)
OUT = ROOT / "var" / "bench" / "tiles_warm.json"


def _warm_layer(owner: User) -> Layer:
    """A library layer of POINTS listings (the owner, an admin, sees it through the library rule)."""
    workspace = bench_workspace(owner)
    name = f"Warm tiles {POINTS:,}"
    layer = Layer.objects.for_workspace(workspace).filter(name=name).first()
    if layer is not None:
        return layer
    layer = layer_create(
        actor=actor_for(owner), user=owner, workspace=workspace, name=name, geometry_type="point", is_global=True
    )
    rng, places = random.Random(SEED), cities()[:500]
    rows = []
    for _ in range(POINTS):
        lon, lat, props = listing(rng, rng.choice(places))
        rows.append(Feature(workspace_id=workspace.pk, layer=layer, geom=Point(lon, lat, srid=4326), properties=props))
    Feature.objects.for_workspace(workspace).bulk_create(rows, batch_size=5000)
    print(f"[bench] created {POINTS:,} points in layer {layer.pk}", flush=True)
    return layer


def _paths(layer: Layer) -> list[str]:
    """Tiles around the 40 biggest cities at each zoom (some dense, some empty), versioned as TileJSON gives them."""
    tiles = {tile_of(c["longitude"], c["latitude"], z) for c in cities()[:40] for z in ZOOMS}
    return [f"/tiles/layers/{layer.pk}/{z}/{x}/{y}.mvt?v={layer.data_version}" for z, x, y in sorted(tiles)]


def _session_cookie(owner: User) -> str:
    client = Client()
    client.force_login(owner)
    return f"sessionid={client.cookies['sessionid'].value}"


def _replay(paths: list[str], cookie: str) -> tuple[list[float], int]:
    """Latencies in ms at c=CONCURRENCY, and the count of non-2xx answers."""
    samples = replay(paths, CONCURRENCY, {"Cookie": cookie, "Accept-Encoding": "gzip"})
    return [s.ms for s in samples], sum(s.status not in (200, 204) for s in samples)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    owner = bench_owner()
    layer = _warm_layer(owner)
    paths = _paths(layer)
    cookie = _session_cookie(owner)
    process = server(app=APP)
    try:
        _replay(paths, cookie)  # fills the tile cache (and the route's connection pools)
        pids = process_tree(process.pid)
        cpu_before, started = cpu_seconds(pids), time.perf_counter()
        latencies, errors = _replay(paths * ROUNDS, cookie)
        seconds, cpu = time.perf_counter() - started, cpu_seconds(pids) - cpu_before
    finally:
        process.terminate()
        process.wait(timeout=30)
    result: dict[str, Any] = {
        "app": APP,
        "concurrency": CONCURRENCY,
        "requests": len(latencies),
        "p50_ms": round(_percentile(latencies, 50), 2),
        "p95_ms": round(_percentile(latencies, 95), 2),
        "p99_ms": round(_percentile(latencies, 99), 2),
        "tiles_per_s": round(len(latencies) / seconds, 1),
        "server_cpu_ms_per_tile": round(cpu * 1000 / len(latencies), 3),
        "errors": errors,
        "load_average": os.getloadavg(),
    }
    print(
        f"warm c={CONCURRENCY} {APP}: p50 {result['p50_ms']} ms  p95 {result['p95_ms']} ms  "
        f"p99 {result['p99_ms']} ms  {result['tiles_per_s']}/s  server CPU {result['server_cpu_ms_per_tile']} ms/tile  "
        f"errors {errors}  load {' '.join(f'{x:.2f}' for x in result['load_average'])}",
        flush=True,
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1))
    print(f"[bench] wrote {OUT}")


if __name__ == "__main__":
    main()
