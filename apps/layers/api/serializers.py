from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework_gis.serializers import GeoFeatureModelSerializer

from apps.accounts.api.serializers import UserSerializer
from apps.core.serializers import GeoJSONGeometryField, StrictInputSerializer
from apps.layers.models import Editable, Feature, GeometryType, Layer, SourceType


class LayerSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Layer
        fields = ["id", "name", "source_type", "geometry_type", "feature_count", "data_version", "style_config"]
        read_only_fields = fields


class LayerSerializer(serializers.ModelSerializer):
    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    extent = GeoJSONGeometryField(read_only=True)
    created_by = UserSerializer(read_only=True)
    permissions = serializers.SerializerMethodField()

    class Meta:
        model = Layer
        fields = [
            "id",
            "workspace",
            "name",
            "description",
            "category",
            "source_type",
            "source_config",
            "style_config",
            "legend_config",
            "metadata",
            "editable",
            "is_global",
            "geometry_type",
            "feature_count",
            "extent",
            "attribute_schema",
            "data_version",
            "created_by",
            "created_at",
            "updated_at",
            "permissions",
        ]
        read_only_fields = fields

    def get_permissions(self, layer: Layer) -> list[str]:
        actions = self.context.get("layer_actions", {}).get(layer.pk)
        return sorted(actions) if actions is not None else []


class LayerInputSerializer(StrictInputSerializer):
    workspace = serializers.SlugField(help_text="Slug of the workspace (on create only).")
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(allow_blank=True, required=False)
    category = serializers.CharField(max_length=100, allow_blank=True, required=False)
    source_type = serializers.ChoiceField(choices=SourceType.choices, required=False)
    source_config = serializers.JSONField(required=False)
    style_config = serializers.JSONField(required=False)
    legend_config = serializers.JSONField(required=False)
    metadata = serializers.JSONField(required=False)
    editable = serializers.ChoiceField(choices=Editable.choices, required=False)
    is_global = serializers.BooleanField(required=False)
    geometry_type = serializers.ChoiceField(choices=GeometryType.choices, required=False)


class LayerUpdateSerializer(LayerInputSerializer):
    workspace = None
    source_type = None  # a layer's kind is fixed at creation
    geometry_type = None


class FeatureSerializer(GeoFeatureModelSerializer):
    """A feature as GeoJSON; `version` and `external_id` ride along as foreign members."""

    class Meta:
        model = Feature
        geo_field = "geom"
        id_field = "id"
        fields = ["id", "geom", "properties", "version", "external_id"]

    def to_representation(self, instance: Feature) -> dict[str, Any]:
        feature = super().to_representation(instance)
        feature["properties"] = instance.properties
        feature["version"] = instance.version
        feature["external_id"] = instance.external_id
        return feature


class FeatureAttributesSerializer(serializers.ModelSerializer):
    """Attributes without geometry, for tables and lists."""

    class Meta:
        model = Feature
        fields = ["id", "version", "external_id", "properties", "updated_at"]
        read_only_fields = fields


class GeoJSONFeatureInputSerializer(StrictInputSerializer):
    type = serializers.ChoiceField(choices=["Feature"])
    geometry = serializers.JSONField()
    properties = serializers.JSONField(required=False, allow_null=True)
    external_id = serializers.CharField(max_length=255, required=False, allow_null=True)
    id = serializers.JSONField(required=False, help_text="Ignored on create; ids are assigned by the server.")


class GeoJSONFeaturePatchSerializer(StrictInputSerializer):
    type = serializers.ChoiceField(choices=["Feature"], required=False)
    geometry = serializers.JSONField(required=False)
    properties = serializers.JSONField(required=False, allow_null=True)
    id = serializers.JSONField(required=False)
    version = serializers.IntegerField(required=False, help_text="Ignored: send the version in If-Match.")
