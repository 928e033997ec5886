"""The tiling job: precompute a large point layer's cluster grid (and warm its stats) after data changes."""

from __future__ import annotations

from django.core.cache import cache
from django.db import transaction

from apps.jobs.models import Job, JobKind
from apps.jobs.services import job_report, job_start, job_succeed
from apps.layers.aggregates import attribute_stats
from apps.layers.models import GeometryType, Layer
from apps.tiles.aggregates import build_point_clusters
from apps.tiles.mvt import CLUSTER_CELLS, CLUSTER_MIN_FEATURES
from apps.tiles.pointcolumns import export_point_columns
from apps.tiles.pointtable import build_point_table, layer_needs_point_table

DEBOUNCE_SECONDS = 10


def layer_needs_aggregates(layer: Layer) -> bool:
    style = layer.style_config or {}
    wanted = style.get("cluster")
    if wanted is None:
        wanted = layer.feature_count >= CLUSTER_MIN_FEATURES
    return layer.geometry_type == GeometryType.POINT and bool(wanted)


def layer_tiling_schedule(*, layer: Layer) -> Job | None:
    """Queue one tiling job for a layer whose data changed; bursts of edits share one job.

    The debounce key lives in Redis: while a job is pending, further edits only
    bump data_version (tiles stay exact by computing on the fly until the job runs).
    """
    if not layer_needs_aggregates(layer):
        return None
    if not cache.add(f"tiling:pending:{layer.pk}", 1, timeout=DEBOUNCE_SECONDS * 6):
        return None
    job = Job.objects.for_workspace(layer.workspace_id).create(
        workspace_id=layer.workspace_id,
        kind=JobKind.TILING,
        layer=layer,
        phase="queued",
        params={"layer": str(layer.pk)},
    )
    from apps.tiles.tasks import layer_tiling_run

    transaction.on_commit(lambda: layer_tiling_run.apply_async(args=[str(job.pk)], countdown=DEBOUNCE_SECONDS))
    return job


def layer_tiling_execute(*, job: Job) -> None:
    """Build the aggregates for the layer's current version and warm its attribute stats."""
    layer = Layer.objects.for_workspace(job.workspace_id).filter(pk=job.layer_id).first()
    cache.delete(f"tiling:pending:{job.layer_id}")
    if layer is None or job.is_finished:
        return
    # Through the job services, so the maps showing the layer see the progress live.
    claimed = job_start(job=job)
    if claimed is None:
        return
    # The point table and its columns first: once they are current they answer every cluster tile,
    # filtered or not, in milliseconds, while the cluster cells (the fastest unfiltered path) are built.
    points = columns = None
    if layer_needs_point_table(layer):
        job_report(job=claimed, phase="point table", progress=5)
        points = build_point_table(layer)
        job_report(job=claimed, phase="point columns", progress=40)
        columns = export_point_columns(layer)
    job_report(job=claimed, phase="tiling", progress=55)
    style = layer.style_config or {}
    numeric = [a for a in style.get("cluster_properties", []) if layer.attribute_schema.get(a) in ("integer", "number")]
    cells = build_point_clusters(
        layer, max_zoom=style.get("cluster_max_zoom", 11), cells_per_tile=CLUSTER_CELLS, attributes=numeric
    )
    job_report(job=claimed, phase="stats", progress=90)
    attribute_stats(layer)
    with transaction.atomic():
        result = {"cells": cells, "data_version": layer.data_version}
        if points is not None:
            result |= {"points": points.points_rows, "points_build_s": points.points_build_seconds}
        if columns is not None:
            result |= {"point_columns": columns["rows"]}
        job_succeed(job=claimed, result=result)
