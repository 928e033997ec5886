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
    # The point table (ClusterPoint rows) for filtered cluster tiles, when the layer is large enough.
    points_data_version = models.BigIntegerField(null=True)
    points_status = models.CharField(max_length=16, default="none")  # none | building | ready | failed
    points_columns = models.JSONField(default=dict)  # attribute → {"slot": "n0" | "c0", "kind": "number" | "code"}
    points_rows = models.BigIntegerField(default=0)
    points_build_seconds = models.FloatField(null=True)

    def __str__(self) -> str:
        return f"{self.layer_id} v{self.data_version} up to z{self.max_zoom}"


class ClusterPoint(models.Model):
    """One point of a large point layer, compactly, for filtered cluster tiles (apps/tiles/pointtable.py).

    Ordered by (layer, key): `key` is the point's Morton (Z-order) key on the z20 tile
    grid, so a tile is one contiguous key range and a cluster cell at zoom z is
    `key >> 2 * (16 - z)`. Numeric attributes sit in `n*` slots, low-cardinality
    strings in `c*` slots as codes (ClusterPointCode); TilingState.points_columns
    says which attribute is in which slot. Rows are written by the tiling job only.
    """

    id = models.BigAutoField(primary_key=True)
    # Rows leave with their layer (through clusterpoint_key_idx). A workspace constraint or cascade
    # would check or delete by workspace_id: a sequential scan of every tenant's points, or a
    # second large index kept only for that.
    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.DO_NOTHING, related_name="+", db_index=False, db_constraint=False
    )
    # No database constraint either: its deferred check ran once per row at the build's commit (~30 s of
    # a 10M-point build). The build holds the layer row FOR KEY SHARE instead (aggregates.layer_for_build),
    # so the layer cannot be deleted under it, and Django's cascade deletes the rows with the layer.
    layer = models.ForeignKey(
        "layers.Layer", on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    key = models.BigIntegerField()
    feature_id = models.BigIntegerField()
    x = models.FloatField()  # Web Mercator metres, exact: cluster centroids equal the on-the-fly ones
    y = models.FloatField()
    n0 = models.FloatField(null=True)
    n1 = models.FloatField(null=True)
    n2 = models.FloatField(null=True)
    n3 = models.FloatField(null=True)
    n4 = models.FloatField(null=True)
    n5 = models.FloatField(null=True)
    c0 = models.SmallIntegerField(null=True)
    c1 = models.SmallIntegerField(null=True)
    c2 = models.SmallIntegerField(null=True)
    c3 = models.SmallIntegerField(null=True)

    class Meta:
        indexes = [models.Index(fields=["layer", "key"], name="clusterpoint_key_idx")]

    def __str__(self) -> str:
        return f"{self.layer_id} #{self.feature_id}"


class ClusterPointCode(models.Model):
    """The dictionary of one string slot of a layer's point table: text value ↔ small code."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(  # as ClusterPoint's: rows leave with their layer
        "workspaces.Workspace", on_delete=models.DO_NOTHING, related_name="+", db_index=False, db_constraint=False
    )
    layer = models.ForeignKey("layers.Layer", on_delete=models.CASCADE, related_name="+", db_index=False)
    slot = models.PositiveSmallIntegerField()
    code = models.SmallIntegerField()
    value = models.TextField()

    class Meta:
        indexes = [models.Index(fields=["layer", "slot", "value"], name="clusterpointcode_value_idx")]

    def __str__(self) -> str:
        return f"{self.layer_id} c{self.slot} {self.code}={self.value}"
