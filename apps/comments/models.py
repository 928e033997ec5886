from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.gis.db import models as gis
from django.db import models
from django.db.models import Q

from apps.workspaces.models import WorkspaceOwned


class Comment(WorkspaceOwned):
    """A comment on a map or a layer, optionally pinned to a feature or a point.

    Threads are one level deep: a reply's parent is a root comment.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    map = models.ForeignKey("maps.Map", null=True, blank=True, on_delete=models.CASCADE, related_name="comments")
    layer = models.ForeignKey("layers.Layer", null=True, blank=True, on_delete=models.CASCADE, related_name="comments")
    # No key in the database: layers_feature is partitioned and its primary key is (id, bucket).
    # The ORM still nulls the pin when a feature is deleted; raw feature deletes unpin first
    # (apps/imports/loading.py).
    feature = models.ForeignKey(
        "layers.Feature", null=True, blank=True, on_delete=models.SET_NULL, related_name="comments",
        db_constraint=False,
    )  # fmt: skip
    anchor = gis.PointField(srid=4326, null=True, blank=True)
    anchor_zoom = models.FloatField(null=True, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="replies")
    body = models.TextField(max_length=10_000)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    edited_at = models.DateTimeField(null=True, blank=True, editable=False)
    is_resolved = models.BooleanField(default=False)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    resolved_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["id", "workspace"], name="comment_id_workspace_unique"),
            models.CheckConstraint(
                condition=(Q(map__isnull=False) & Q(layer__isnull=True))
                | (Q(map__isnull=True) & Q(layer__isnull=False)),
                name="comment_exactly_one_target",
            ),
            models.CheckConstraint(condition=Q(body__regex=r"\S"), name="comment_body_not_empty"),
            models.CheckConstraint(
                condition=Q(is_resolved=False, resolved_at__isnull=True)
                | Q(is_resolved=True, resolved_at__isnull=False),
                name="comment_resolved_has_time",
            ),
            models.CheckConstraint(
                condition=Q(anchor_zoom__isnull=True) | Q(anchor_zoom__gte=0, anchor_zoom__lte=24),
                name="comment_anchor_zoom_range",
            ),
            models.CheckConstraint(condition=~Q(parent=models.F("id")), name="comment_not_own_parent"),
        ]
        indexes = [
            models.Index(fields=["map", "created_at"]),
            models.Index(fields=["layer", "created_at"]),
            models.Index(fields=["feature"]),
        ]

    def __str__(self) -> str:
        return f"{self.author}: {self.body[:40]}"
