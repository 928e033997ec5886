from __future__ import annotations

from django.contrib.gis.geos import GEOSGeometry
from rest_framework import serializers

from apps.accounts.api.serializers import UserSerializer
from apps.comments.models import Comment
from apps.core.geometry import validate_geometry
from apps.core.serializers import GeoJSONGeometryField, StrictInputSerializer


class CommentSerializer(serializers.ModelSerializer):
    author = UserSerializer(read_only=True)
    resolved_by = UserSerializer(read_only=True)
    anchor = GeoJSONGeometryField(read_only=True)
    reply_count = serializers.IntegerField(read_only=True, default=0)

    class Meta:
        model = Comment
        fields = [
            "id",
            "map",
            "layer",
            "feature",
            "anchor",
            "anchor_zoom",
            "parent",
            "body",
            "author",
            "created_at",
            "edited_at",
            "is_resolved",
            "resolved_by",
            "resolved_at",
            "reply_count",
        ]
        read_only_fields = fields


class CommentInputSerializer(StrictInputSerializer):
    map = serializers.UUIDField(required=False)
    layer = serializers.UUIDField(required=False)
    feature = serializers.IntegerField(required=False, min_value=1)
    parent = serializers.UUIDField(required=False)
    body = serializers.CharField(max_length=10_000)
    anchor = GeoJSONGeometryField(required=False)
    anchor_zoom = serializers.FloatField(min_value=0, max_value=24, required=False)

    def validate_anchor(self, value: GEOSGeometry) -> GEOSGeometry:
        if value.geom_type != "Point":
            raise serializers.ValidationError(f"Must be a Point, not {value.geom_type}.")
        return validate_geometry(value, field="anchor", family="point")

    def validate(self, data: dict) -> dict:
        if ("map" in data) == ("layer" in data) and "parent" not in data:
            raise serializers.ValidationError({"map": ["Give exactly one of map or layer (or a parent to reply to)."]})
        return data


class CommentUpdateSerializer(StrictInputSerializer):
    body = serializers.CharField(max_length=10_000)
