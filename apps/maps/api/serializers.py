from __future__ import annotations

from django.conf import settings
from django.contrib.gis.geos import GEOSGeometry
from rest_framework import serializers

from apps.accounts.api.serializers import UserSerializer
from apps.collaboration.models import MapEvent
from apps.core.geometry import validate_geometry
from apps.core.serializers import GeoJSONGeometryField, StrictInputSerializer
from apps.maps.models import Basemap, Grant, Map, MapCollaborator, MapLayer, Visibility
from apps.maps.permissions import MapAction, map_actions


class MapSerializer(serializers.ModelSerializer):
    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    center = GeoJSONGeometryField(read_only=True)
    created_by = UserSerializer(read_only=True)
    permissions = serializers.SerializerMethodField(help_text="What you may do to this map.")
    share_url = serializers.SerializerMethodField()

    class Meta:
        model = Map
        fields = [
            "id",
            "workspace",
            "name",
            "description",
            "center",
            "zoom",
            "bearing",
            "pitch",
            "basemap",
            "visibility",
            "share_url",
            "created_by",
            "created_at",
            "updated_at",
            "last_event_seq",
            "permissions",
        ]
        read_only_fields = fields

    def get_permissions(self, map: Map) -> list[str]:
        return sorted(map_actions(self.context["actor"], map))

    def get_share_url(self, map: Map) -> str | None:
        """Only managers see the share link of a public map (it can be rotated)."""
        if map.visibility != Visibility.PUBLIC or MapAction.MANAGE not in map_actions(self.context["actor"], map):
            return None
        return f"{settings.SITE_URL}/m/{map.share_token}"


class MapInputSerializer(StrictInputSerializer):
    workspace = serializers.SlugField(help_text="Slug of the workspace (on create only).")
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(allow_blank=True, required=False)
    center = GeoJSONGeometryField(required=False)
    zoom = serializers.FloatField(min_value=0, max_value=24, required=False)
    bearing = serializers.FloatField(min_value=-180, max_value=360, required=False)
    pitch = serializers.FloatField(min_value=0, max_value=85, required=False)
    basemap = serializers.ChoiceField(choices=Basemap.choices, required=False)
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)

    def validate_center(self, value: GEOSGeometry) -> GEOSGeometry:
        if value.geom_type != "Point":
            raise serializers.ValidationError(f"Must be a Point, not {value.geom_type}.")
        return validate_geometry(value, field="center", family="point")


class MapUpdateSerializer(MapInputSerializer):
    workspace = None  # a map never moves between workspaces


class MapLayerSerializer(serializers.ModelSerializer):
    layer = serializers.SerializerMethodField()

    class Meta:
        model = MapLayer
        fields = ["layer", "display_order", "is_visible", "opacity"]
        read_only_fields = fields

    def get_layer(self, entry: MapLayer) -> dict:
        from apps.layers.api.serializers import LayerSummarySerializer

        return LayerSummarySerializer(entry.layer).data


class MapLayerAddSerializer(StrictInputSerializer):
    layer = serializers.UUIDField()
    display_order = serializers.IntegerField(min_value=0, required=False)
    is_visible = serializers.BooleanField(required=False)
    opacity = serializers.FloatField(min_value=0, max_value=1, required=False)


class MapLayerUpdateSerializer(StrictInputSerializer):
    is_visible = serializers.BooleanField(required=False)
    opacity = serializers.FloatField(min_value=0, max_value=1, required=False)


class ReorderSerializer(StrictInputSerializer):
    layers = serializers.ListField(child=serializers.UUIDField(), max_length=500)


class CollaboratorSerializer(serializers.ModelSerializer):
    user = UserSerializer(read_only=True)
    invited_by = UserSerializer(read_only=True)

    class Meta:
        model = MapCollaborator
        fields = ["id", "email", "user", "permission", "invited_by", "invited_at", "accepted_at"]
        read_only_fields = fields


class CollaborationSerializer(CollaboratorSerializer):
    """A grant seen by its recipient."""

    map = serializers.SerializerMethodField()

    class Meta(CollaboratorSerializer.Meta):
        fields = [*CollaboratorSerializer.Meta.fields, "map"]
        read_only_fields = fields

    def get_map(self, collaborator: MapCollaborator) -> dict:
        return {"id": str(collaborator.map_id), "name": collaborator.map.name}


class CollaboratorInviteSerializer(StrictInputSerializer):
    email = serializers.EmailField()
    permission = serializers.ChoiceField(choices=Grant.choices, default=Grant.VIEW)


class CollaboratorUpdateSerializer(StrictInputSerializer):
    permission = serializers.ChoiceField(choices=Grant.choices)


class MapEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = MapEvent
        fields = ["id", "seq", "type", "payload", "actor", "created_at"]
        read_only_fields = fields
