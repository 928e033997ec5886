from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.imports.remote import FORMAT_EXTENSIONS
from apps.imports.selection import ALL_LAYERS
from apps.imports.types import ImportMode


class LayerNamesField(serializers.ListField):
    """Source layer names: repeated form fields (`layers=a&layers=b`), a JSON list, or "*" for every layer."""

    def to_internal_value(self, data: Any) -> list[Any]:
        return super().to_internal_value([data] if data == ALL_LAYERS else data)


class ImportInputSerializer(serializers.Serializer):
    """The fields of an import: a multipart upload (the file streams to disk), or JSON naming a `url`."""

    workspace = serializers.SlugField(help_text="The workspace's slug.")
    mode = serializers.ChoiceField(choices=[m.value for m in ImportMode], default=ImportMode.NEW.value)
    layer = serializers.UUIDField(required=False, help_text="append / replace: the layer to change.")
    name = serializers.CharField(required=False, max_length=200, default="", help_text="new: the layer's name.")
    source_layer = serializers.CharField(
        required=False,
        max_length=255,
        help_text="The one layer to read in a multi-layer file (GeoPackage, KML, GPX, OSM PBF).",
    )
    layers = LayerNamesField(
        child=serializers.CharField(max_length=255, allow_blank=True),
        required=False,
        help_text='new: several layers of a multi-layer file, one new layer each; "*" for every layer.',
    )
    srid = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=999_999,
        help_text="EPSG code of a file without a CRS (or to override it).",
    )
    key = serializers.CharField(
        required=False, max_length=100, help_text="upsert: the attribute identifying a feature (its external_id)."
    )
    delete_missing = serializers.BooleanField(
        required=False, default=False, help_text="upsert: delete the layer's features whose key the file lacks."
    )
    file = serializers.FileField(required=False, help_text="The file: GeoJSON, CSV, zipped Shapefile, GeoPackage, …")
    url = serializers.CharField(
        required=False, max_length=2048, help_text="Instead of a file: an http(s) URL the worker downloads."
    )
    format = serializers.ChoiceField(
        required=False,
        choices=sorted(FORMAT_EXTENSIONS),
        help_text="url: the file's format, when neither the URL nor the server's answer names it.",
    )
