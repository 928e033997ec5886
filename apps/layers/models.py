from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.gis.db import models as gis
from django.contrib.gis.db.models.functions import Transform
from django.contrib.postgres.indexes import GistIndex
from django.db import models
from django.db.models import Func, Q, Value

from apps.workspaces.models import Workspace, WorkspaceOwned


class SourceType(models.TextChoices):
    VECTOR = "vector", "Vector (features in PostGIS)"
    WMS = "wms", "WMS / WMS-T service"
    RASTER = "raster", "Raster (COG)"


class GeometryType(models.TextChoices):
    """A layer's geometry family; single and multi parts of the family are both accepted."""

    POINT = "point", "Points"
    LINE = "line", "Lines"
    POLYGON = "polygon", "Polygons"
    MIXED = "mixed", "Mixed"


class Editable(models.TextChoices):
    CREATOR = "creator", "Only its creator (and workspace admins)"
    EVERYONE = "everyone", "Everyone who may edit the map"


class Layer(WorkspaceOwned):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=100, blank=True, db_index=True)
    source_type = models.CharField(max_length=10, choices=SourceType.choices, default=SourceType.VECTOR)
    source_config = models.JSONField(default=dict, blank=True)
    style_config = models.JSONField(default=dict, blank=True)
    legend_config = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    editable = models.CharField(max_length=10, choices=Editable.choices, default=Editable.EVERYONE)
    is_global = models.BooleanField(default=False, help_text="Listed in the workspace's layer library.")
    geometry_type = models.CharField(max_length=10, choices=GeometryType.choices, default=GeometryType.MIXED)
    feature_count = models.BigIntegerField(default=0, editable=False)
    extent = gis.PolygonField(srid=4326, null=True, blank=True, editable=False)
    attribute_schema = models.JSONField(default=dict, blank=True, editable=False)
    # Bumped in the transaction of every change to the layer's features; tiles key on it.
    data_version = models.BigIntegerField(default=1, editable=False)
    # The layers_feature partition holding its features: 0, the shared one, for most layers;
    # a big import's new layer gets a partition of its own (apps/layers/storage.py).
    storage_bucket = models.IntegerField(default=0, db_default=0, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["id", "workspace"], name="layer_id_workspace_unique"),
            # Referenced by layers_feature's (layer_id, workspace_id, bucket) key (migration 0006).
            models.UniqueConstraint(
                fields=["id", "workspace", "storage_bucket"], name="layer_id_workspace_bucket_unique"
            ),
            models.CheckConstraint(condition=Q(source_type__in=SourceType.values), name="layer_source_type_valid"),
            models.CheckConstraint(
                condition=Q(geometry_type__in=GeometryType.values), name="layer_geometry_type_valid"
            ),
            models.CheckConstraint(condition=Q(feature_count__gte=0), name="layer_feature_count_nonnegative"),
        ]
        indexes = [models.Index(fields=["workspace", "is_global", "source_type"])]

    def __str__(self) -> str:
        return self.name


MERCATOR_BOUNDS = (-180.0, -85.0511287798066, 180.0, 85.0511287798066)


class Feature(WorkspaceOwned):
    """One feature of a vector layer. bigint ids, because MVT feature ids are integers.

    layers_feature is partitioned by LIST (bucket), always its layer's `storage_bucket`
    (migration 0005, apps/layers/storage.py). Its primary key is (id, bucket), as PostgreSQL
    requires of a partitioned table; ids still come from one sequence, so `id` alone is unique.
    """

    id = models.BigAutoField(primary_key=True)
    # The partition key; writers set it from the layer (Layer.storage_bucket), never change it.
    bucket = models.IntegerField(db_default=0, editable=False)
    # Neither column has a foreign key of its own: the composite (layer_id, workspace_id, bucket) →
    # layers_layer (id, workspace_id, storage_bucket) key (migrations 0002, 0006) proves all three, and every
    # foreign key costs a trigger call per inserted row (a fifth of a bulk import each).
    # Features go only with their layer (that key cascades; so does Feature.layer below), so
    # deleting a workspace deletes them through its layers; queries by workspace filter by layer too.
    workspace = models.ForeignKey(
        Workspace, on_delete=models.DO_NOTHING, related_name="+", editable=False, db_constraint=False, db_index=False
    )
    # Indexed by (layer, id) below, which also serves lookups by layer alone.
    layer = models.ForeignKey(
        Layer, on_delete=models.CASCADE, related_name="features", db_index=False, db_constraint=False
    )
    geom = gis.GeometryField(srid=4326)
    # Web Mercator copy kept by PostgreSQL itself, so tile queries never transform per row.
    # Clipped to Mercator's latitude band first: ST_Transform fails beyond ±85.05°,
    # and polar data (Antarctica) must still load. Parts outside the band are not on any tile.
    geom_3857 = models.GeneratedField(
        expression=Transform(
            Func(
                "geom",
                Func(*(Value(v) for v in MERCATOR_BOUNDS), Value(4326), function="ST_MakeEnvelope"),
                function="ST_ClipByBox2D",
                output_field=gis.GeometryField(srid=4326),
            ),
            3857,
        ),
        output_field=gis.GeometryField(srid=3857),
        db_persist=True,
    )
    properties = models.JSONField(default=dict, blank=True)
    version = models.PositiveIntegerField(default=1, editable=False)
    external_id = models.CharField(max_length=255, null=True, blank=True)
    # Audit ids, kept after the account is deleted (no key: two trigger calls per imported row,
    # no index: nothing looks features up by author). Readers must expect a user that is gone.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING, related_name="+",
        editable=False, db_constraint=False, db_index=False,
    )  # fmt: skip
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING, related_name="+",
        editable=False, db_constraint=False, db_index=False,
    )  # fmt: skip

    class Meta:
        ordering = ["id"]
        constraints = [
            # With the partition key, as PostgreSQL requires; a layer lives in one bucket,
            # so this is still one feature per key and layer.
            models.UniqueConstraint(
                fields=["layer", "external_id", "bucket"],
                condition=Q(external_id__isnull=False),
                name="feature_external_id_unique_per_layer",
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="feature_version_positive"),
        ]
        indexes = [
            models.Index(fields=["layer", "id"], name="feature_layer_id_idx"),  # cursor pagination
            GistIndex(fields=["geom_3857"], name="feature_geom_3857_gist"),  # tiles
        ]

    def __str__(self) -> str:
        return f"Feature {self.pk} of {self.layer_id}"
