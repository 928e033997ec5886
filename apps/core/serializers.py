from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework_gis.fields import GeometryField


class StrictInputSerializer(serializers.Serializer):
    """Input serializer that refuses fields it does not know (mass assignment, typos).

    A read-only or server-owned field sent by a client (`workspace` on update,
    `created_by`, `version`…) is a 400 naming the field; nothing is written.
    """

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - {name for name, f in self.fields.items() if not f.read_only})
            if unknown:
                raise serializers.ValidationError({name: ["Unknown or read-only field."] for name in unknown})
        return super().to_internal_value(data)


GEOJSON_GEOMETRY_SCHEMA = {
    "type": "object",
    "description": "A GeoJSON geometry (RFC 7946), coordinates as [longitude, latitude] in WGS 84.",
    "properties": {"type": {"type": "string"}, "coordinates": {"type": "array", "items": {}}},
    "required": ["type", "coordinates"],
}


@extend_schema_field(GEOJSON_GEOMETRY_SCHEMA)
class GeoJSONGeometryField(GeometryField):
    """rest_framework_gis' GeometryField with its OpenAPI shape declared."""
