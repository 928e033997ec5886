from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.contrib.gis.db import models as gis
from django.db import models
from django.db.models.functions import Lower

from apps.workspaces.models import WorkspaceOwned


def new_share_token() -> str:
    return secrets.token_urlsafe(24)


class Visibility(models.TextChoices):
    PRIVATE = "private", "Private"  # creator, workspace admins, explicit collaborators
    WORKSPACE = "workspace", "Workspace"  # every member views; editors edit
    PUBLIC = "public", "Public"  # anyone views, also by share link; never edits


class Grant(models.TextChoices):
    """What a per-map collaborator may do; each includes the ones before it."""

    VIEW = "view", "View"
    COMMENT = "comment", "Comment"
    EDIT = "edit", "Edit"


GRANT_RANK = {Grant.VIEW: 1, Grant.COMMENT: 2, Grant.EDIT: 3}


class Basemap(models.TextChoices):
    BRIGHT = "bright", "OSM Bright"
    NONE = "none", "No basemap"


class Map(WorkspaceOwned):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    center = gis.PointField(srid=4326, default="SRID=4326;POINT(0 0)")
    zoom = models.FloatField(default=2)
    bearing = models.FloatField(default=0)
    pitch = models.FloatField(default=0)
    basemap = models.CharField(max_length=20, choices=Basemap.choices, default=Basemap.BRIGHT)
    visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.WORKSPACE)
    share_token = models.CharField(max_length=64, unique=True, default=new_share_token, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    # The seq of the newest MapEvent; bumped in the same transaction as the event.
    last_event_seq = models.BigIntegerField(default=0, editable=False)
    layers = models.ManyToManyField("layers.Layer", through="MapLayer", related_name="maps")

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            # Target of composite foreign keys (tenant-safe joins; Citus colocation).
            models.UniqueConstraint(fields=["id", "workspace"], name="map_id_workspace_unique"),
            models.CheckConstraint(condition=models.Q(zoom__gte=0, zoom__lte=24), name="map_zoom_range"),
            models.CheckConstraint(condition=models.Q(pitch__gte=0, pitch__lte=85), name="map_pitch_range"),
            models.CheckConstraint(condition=models.Q(bearing__gte=-180, bearing__lte=360), name="map_bearing_range"),
            models.CheckConstraint(condition=models.Q(visibility__in=Visibility.values), name="map_visibility_valid"),
        ]
        indexes = [models.Index(fields=["workspace", "visibility"])]

    def __str__(self) -> str:
        return self.name

    @property
    def is_public(self) -> bool:
        return self.visibility == Visibility.PUBLIC


class MapLayer(WorkspaceOwned):
    map = models.ForeignKey(Map, on_delete=models.CASCADE, related_name="map_layers")
    layer = models.ForeignKey("layers.Layer", on_delete=models.CASCADE, related_name="map_layers")
    display_order = models.PositiveIntegerField(default=0)
    is_visible = models.BooleanField(default=True)
    opacity = models.FloatField(default=1.0)

    class Meta:
        ordering = ["display_order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["map", "layer"], name="maplayer_unique_pair"),
            models.CheckConstraint(condition=models.Q(opacity__gte=0, opacity__lte=1), name="maplayer_opacity_range"),
        ]

    def __str__(self) -> str:
        return f"{self.layer_id} on {self.map_id}"


class MapCollaborator(WorkspaceOwned):
    """A per-map grant. The person need not be a workspace member (a guest)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    map = models.ForeignKey(Map, on_delete=models.CASCADE, related_name="collaborators")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="map_grants"
    )
    email = models.EmailField(help_text="Where the invitation went; binds to the user who accepts.")
    permission = models.CharField(max_length=10, choices=Grant.choices, default=Grant.VIEW)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    invited_at = models.DateTimeField(auto_now_add=True)
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["invited_at"]
        constraints = [
            models.UniqueConstraint("map", Lower("email"), name="mapcollaborator_unique_email"),
            models.UniqueConstraint(
                fields=["map", "user"], condition=models.Q(user__isnull=False), name="mapcollaborator_unique_user"
            ),
            models.CheckConstraint(condition=models.Q(permission__in=Grant.values), name="mapcollaborator_grant_valid"),
            # Accepted means bound to a user.
            models.CheckConstraint(
                condition=models.Q(accepted_at__isnull=True) | models.Q(user__isnull=False),
                name="mapcollaborator_accepted_has_user",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} on {self.map_id} ({self.permission})"

    @property
    def is_accepted(self) -> bool:
        return self.accepted_at is not None
