from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db import transaction
from django.db.models import CharField, F, Func, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from apps.core.errors import ApplicationError
from apps.core.geometry import validate_geometry
from apps.layers.configs import LayerMetadata, LegendConfig, StyleConfig, validated, validated_source
from apps.layers.models import Feature, Layer
from apps.workspaces.admin_base import (
    EstimatedCountPaginator,
    LargeTableChangeList,
    WorkspaceListFilter,
    WorkspaceOwnedForm,
    WorkspaceOwnedGISAdmin,
    json_block,
)

LAYER_BLOBS = {"style_config": StyleConfig, "legend_config": LegendConfig, "metadata": LayerMetadata}


class LayerAdminForm(WorkspaceOwnedForm):
    """The JSON blobs pass the same schemas as through the API (apps/layers/configs.py)."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for name, schema in LAYER_BLOBS.items():
            if name in cleaned:
                self._validate_blob(name, lambda value, schema=schema, name=name: validated(schema, value, field=name))
        source_type = cleaned.get("source_type", self.instance.source_type)
        if "source_config" in cleaned and source_type:
            self._validate_blob("source_config", lambda value: validated_source(source_type, value))
        return cleaned

    def _validate_blob(self, name: str, validate: Any) -> None:
        try:
            self.cleaned_data[name] = validate(self.cleaned_data[name])
        except ApplicationError as error:
            self.add_error(name, f"{error.field}: {error.message}")


class FeatureAdminForm(WorkspaceOwnedForm):
    """A geometry passes the same checks as through the API: family, size, range, validity."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        layer = cleaned.get("layer") or getattr(self.instance, "layer", None)
        if cleaned.get("geom") is not None and layer is not None:
            try:
                validate_geometry(cleaned["geom"], field="geom", family=layer.geometry_type)
            except ApplicationError as error:
                self.add_error("geom", error.message)
        return cleaned


@admin.register(Layer)
class LayerAdmin(WorkspaceOwnedGISAdmin):
    form = LayerAdminForm
    choose_workspace_on_add = True
    map_only_fields = ("extent",)
    list_display = (
        "name",
        "workspace",
        "source_type",
        "geometry_type",
        "feature_count",
        "is_global",
        "data_version",
        "updated_at",
    )
    list_select_related = ("workspace",)
    list_filter = (
        "source_type",
        "geometry_type",
        "is_global",
        "editable",
        ("workspace", WorkspaceListFilter),
        "created_at",
        "updated_at",
    )
    search_fields = ("name", "category", "workspace__name", "workspace__slug", "=id")
    search_help_text = "Name, category, workspace or an exact layer id."
    fieldsets = (
        (None, {"fields": ("name", "description", "category", "source_type", "geometry_type")}),
        ("Sharing", {"fields": ("is_global", "editable")}),
        ("Configuration", {"fields": ("source_config", "style_config", "legend_config", "metadata")}),
        ("Data", {"fields": ("features_link", "feature_count", "data_version", "extent", "attribute_schema_json")}),
    )
    readonly_fields = ("features_link", "attribute_schema_json")

    def get_fieldsets(self, request: HttpRequest, obj: Layer | None = None) -> list[tuple[Any, dict[str, Any]]]:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:  # a new layer has no data yet
            return [(title, options) for title, options in fieldsets if title != "Data"]
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Layer | None = None) -> list[str]:
        # attribute_schema is shown, indented, by attribute_schema_json.
        return [name for name in super().get_readonly_fields(request, obj) if name != "attribute_schema"]

    @admin.display(description="features")
    def features_link(self, layer: Layer) -> str:
        url = reverse("admin:layers_feature_changelist") + f"?layer__id__exact={layer.pk}"
        return format_html('<a href="{}">Browse {} feature(s)</a>', url, layer.feature_count)

    @admin.display(description="attribute schema")
    def attribute_schema_json(self, layer: Layer) -> str:
        return json_block(layer.attribute_schema)


class GeometryKind(Func):
    function = "GeometryType"
    output_field = CharField()


@admin.register(Feature)
class FeatureAdmin(WorkspaceOwnedGISAdmin):
    """Built for layers with millions of features.

    The list never loads geometries or properties (only their type, computed in
    PostGIS), counts an unfiltered list from planner statistics, and picks layers and
    features through autocomplete / raw-id widgets instead of <select>s of every row.
    Open a layer's features from the layer's page (a filter on layer__id__exact).
    """

    form = FeatureAdminForm
    list_display = ("id", "layer", "external_id", "geometry_kind", "version", "updated_by", "updated_at")
    list_select_related = ("layer", "updated_by")
    # Only the layer's name is shown; its extent and JSON would be fetched once per row.
    list_deferred_fields = ("geom", "properties", "layer__extent", "layer__style_config", "layer__source_config")
    list_deferred_fields += ("layer__legend_config", "layer__metadata", "layer__attribute_schema")
    list_filter = ("updated_at",)
    search_fields = ("=external_id",)
    search_help_text = "A feature id or an exact external id."
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    autocomplete_fields = ("layer",)
    fieldsets = ((None, {"fields": ("layer", "external_id", "geom", "properties")}),)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Feature]:
        # geom_3857 is the tile copy of geom, kept by PostgreSQL: never shown, never written.
        return super().get_queryset(request).defer("geom_3857").annotate(geometry_kind=GeometryKind("geom"))

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[LargeTableChangeList]:
        return LargeTableChangeList

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Feature], search_term: str
    ) -> tuple[QuerySet[Feature], bool]:
        # Exact matches only, so a search uses an index instead of scanning every property.
        term = search_term.strip()
        if not term:
            return queryset, False
        if term.isdigit() and int(term) < 2**63:
            return queryset.filter(Q(pk=int(term)) | Q(external_id=term)), False
        return queryset.filter(external_id=term), False

    def get_readonly_fields(self, request: HttpRequest, obj: Feature | None = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "layer"] if obj is not None else fields  # a feature never moves between layers

    @admin.display(description="geometry", ordering="geometry_kind")
    def geometry_kind(self, feature: Feature) -> str:
        return getattr(feature, "geometry_kind", "") or "-"

    # Admin edits keep the invariants the feature services keep: a new version for
    # optimistic concurrency (a stale If-Match now gets 412) and a new layer
    # data_version, so no stale tile is served. Not done here: the MapEvent log and
    # the layer's schema / extent, which the next service write or import refreshes.
    @transaction.atomic
    def save_model(self, request: HttpRequest, obj: Feature, form: forms.ModelForm, change: bool) -> None:
        if change:
            obj.version = F("version") + 1
        else:
            obj.bucket = obj.layer.storage_bucket  # the partition holding the layer's features
        super().save_model(request, obj, form, change)
        obj.refresh_from_db(fields=["version"])
        _layer_changed(obj.layer_id, count_delta=0 if change else 1)

    @transaction.atomic
    def delete_model(self, request: HttpRequest, obj: Feature) -> None:
        super().delete_model(request, obj)
        _layer_changed(obj.layer_id, count_delta=-1)

    @transaction.atomic
    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Feature]) -> None:
        counts: dict[Any, int] = {}
        for layer_id in queryset.values_list("layer_id", flat=True):
            counts[layer_id] = counts.get(layer_id, 0) + 1
        super().delete_queryset(request, queryset)
        for layer_id, deleted in counts.items():
            _layer_changed(layer_id, count_delta=-deleted)


def _layer_changed(layer_id: Any, *, count_delta: int) -> None:
    updates: dict[str, Any] = {"data_version": F("data_version") + 1, "updated_at": timezone.now()}
    if count_delta:
        updates["feature_count"] = F("feature_count") + count_delta
    Layer.objects.unscoped().filter(pk=layer_id).update(**updates)
