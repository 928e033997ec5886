from __future__ import annotations

from django.db import models

from apps.workspaces.models import WorkspaceOwned


class PointCluster(WorkspaceOwned):
    """One cell of a point layer's cluster grid at one zoom, for one data version.

    Built by the tiling job (apps/tiles/aggregates.py) so a low-zoom tile reads a
    few hundred cells instead of scanning millions of points. Cells are indexed
    on the tiles' own grid (CLUSTER_CELLS per tile side, aligned with tile edges).
    """

    id = models.BigAutoField(primary_key=True)
    layer = models.ForeignKey("layers.Layer", on_delete=models.CASCADE, related_name="+", db_index=False)
    data_version = models.BigIntegerField()
    z = models.PositiveSmallIntegerField()
    cx = models.BigIntegerField()
    cy = models.BigIntegerField()
    point_count = models.IntegerField()
    sum_x = models.FloatField()  # Web Mercator metres; centroid = sum / point_count
    sum_y = models.FloatField()
    min_id = models.BigIntegerField()
    sums = models.JSONField(default=dict)  # attribute → sum of its numeric values
    counts = models.JSONField(default=dict)  # attribute → how many values were numeric

    class Meta:
        indexes = [models.Index(fields=["layer", "z", "data_version", "cx", "cy"], name="pointcluster_tile_idx")]

    def __str__(self) -> str:
        return f"{self.layer_id} z{self.z} ({self.cx}, {self.cy}): {self.point_count}"


class TilingState(WorkspaceOwned):
    """Which data version of a layer has its aggregates built (one row per layer)."""

    layer = models.OneToOneField("layers.Layer", on_delete=models.CASCADE, related_name="tiling_state")
    data_version = models.BigIntegerField()
    max_zoom = models.PositiveSmallIntegerField()
    attributes = models.JSONField(default=list)
    built_at = models.DateTimeField()
    cells = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.layer_id} v{self.data_version} up to z{self.max_zoom}"
