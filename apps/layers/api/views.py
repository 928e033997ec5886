from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.errors import PreconditionRequired, StaleVersion
from apps.core.geometry import parse_bbox
from apps.core.pagination import CursorPagination, requested_page_size
from apps.layers import selectors, services
from apps.layers.aggregates import Viewport, attribute_stats, viewport_clusters, viewport_features
from apps.layers.api.serializers import (
    FeatureAttributesSerializer,
    FeatureSerializer,
    GeoJSONFeatureInputSerializer,
    GeoJSONFeaturePatchSerializer,
    LayerInputSerializer,
    LayerSerializer,
    LayerUpdateSerializer,
)
from apps.layers.filters import parse_filters
from apps.layers.models import Feature, Layer
from apps.layers.selectors import LayerAccess
from apps.maps.permissions import LayerAction, layer_actions
from apps.maps.selectors import map_for
from apps.tiles.mvt import clusters_at
from apps.workspaces.api.base import UUID_PATTERN, ApiViewSet, ReadOnlyForAnonymous
from apps.workspaces.selectors import workspace_for

VIEWPORT_MAX_FEATURES = 5000


class LayerViewSet(ApiViewSet):
    """Layers: the workspace library (`is_global`) and the layers of maps you can see."""

    serializer_class = LayerSerializer
    queryset = Layer.objects.unscoped().none()  # for the OpenAPI schema only
    lookup_value_regex = UUID_PATTERN
    filter_fields = ("source_type", "category", "is_global")

    def get_permissions(self) -> list[Any]:
        if self.action in ("retrieve", "viewport", "stats"):
            return [ReadOnlyForAnonymous()]
        return super().get_permissions()

    def _access(self, action: LayerAction = LayerAction.VIEW) -> LayerAccess:
        access = selectors.layer_access(self.actor, self.kwargs["pk"], action=action)
        self.enter(access.layer)
        return access

    def _render(self, access: LayerAccess, **kwargs: Any) -> Response:
        context = {**self.get_serializer_context(), "layer_actions": {access.layer.pk: access.actions}}
        return Response(LayerSerializer(access.layer, context=context).data, **kwargs)

    @extend_schema(
        parameters=[
            OpenApiParameter("workspace", str, description="Workspace slug."),
            OpenApiParameter("map", str, description="Only layers on this map (id)."),
            OpenApiParameter("source_type", str),
            OpenApiParameter("category", str),
            OpenApiParameter("is_global", bool),
        ]
    )
    def list(self, request: Request) -> Response:
        params = request.query_params
        workspace_id = workspace_for(self.actor, params["workspace"]).pk if params.get("workspace") else None
        layers = selectors.layers_visible_to(self.actor, workspace_id=workspace_id).select_related("workspace")
        if params.get("map"):
            layers = layers.filter(map_layers__map=map_for(self.actor, params["map"]))
        for name in self.filter_fields:
            if name in params:
                value = params[name]
                if name == "is_global":
                    if value not in ("true", "false"):
                        raise ValidationError({name: ["Must be true or false."]})
                    value = value == "true"
                layers = layers.filter(**{name: value})
        page = self.paginate_queryset(layers.order_by("name", "id"))
        return self.get_paginated_response(LayerSerializer(page, many=True, context=self._list_context(page)).data)

    def _list_context(self, layers: list) -> dict[str, Any]:
        maps = selectors.maps_holding_each(layers)
        actions = {layer.pk: layer_actions(self.actor, layer, maps[layer.pk]) for layer in layers}
        return {**self.get_serializer_context(), "layer_actions": actions}

    @extend_schema(request=LayerInputSerializer, responses={201: LayerSerializer})
    def create(self, request: Request) -> Response:
        data = self.validated_input(LayerInputSerializer)
        workspace = workspace_for(self.actor, data.pop("workspace"))
        layer = services.layer_create(actor=self.actor, user=request.user, workspace=workspace, **data)
        return self._render(selectors.layer_access(self.actor, layer.pk), status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, pk: str) -> Response:
        return self._render(self._access())

    @extend_schema(request=LayerUpdateSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        fields = self.validated_input(LayerUpdateSerializer, partial=True)
        access = self._access()
        services.layer_update(access=access, user=request.user, fields=fields)
        return self._render(access)

    def destroy(self, request: Request, pk: str) -> Response:
        services.layer_delete(access=self._access(), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        parameters=[OpenApiParameter(n, float, required=True) for n in ("west", "south", "east", "north", "zoom")]
        + [OpenApiParameter("limit", int, description=f"Features at high zoom (max {VIEWPORT_MAX_FEATURES}).")],
        description="Clusters at low zoom, feature attributes at high zoom; attribute filters as query parameters.",
    )
    @action(detail=True, methods=["get"])
    def viewport(self, request: Request, pk: str) -> Response:
        """What a map view shows, without tiles: clusters at low zoom, features' attributes at high zoom."""
        layer = self._access().layer
        view = Viewport.parse(request.query_params)
        conditions = parse_filters(request.query_params, layer.attribute_schema, extra_reserved={"limit"})
        if clusters_at(layer, int(view.zoom)):
            return Response({"kind": "clusters", "clusters": viewport_clusters(layer, view, conditions)})
        limit = requested_page_size(request, default=500, param="limit", maximum=VIEWPORT_MAX_FEATURES)
        features, truncated = viewport_features(layer, view, conditions, limit=limit)
        return Response({"kind": "features", "features": features, "truncated": truncated})

    @action(detail=True, methods=["get"])
    def stats(self, request: Request, pk: str) -> Response:
        """Per-attribute min / max / quantiles or most common values, for legends and filter sliders."""
        return Response(attribute_stats(self._access().layer))


class FeatureCursorPagination(CursorPagination):
    page_size = 100

    def get_paginated_response(self, data: list[dict[str, Any]]) -> Response:
        return Response(
            {
                "type": "FeatureCollection",
                "features": data,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
            }
        )


def _if_match_version(request: Request) -> int:
    """The version the client last saw, from `If-Match: "<version>"`."""
    header = request.headers.get("If-Match")
    if not header:
        raise PreconditionRequired("Send If-Match with the feature's ETag (its version) to change it.")
    value = header.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise StaleVersion('If-Match must be the feature\'s ETag, e.g. "3".', field="If-Match")
    return int(value)


def _etag(feature: Feature) -> str:
    return f'"{feature.version}"'


class FeatureViewSet(ApiViewSet):
    """A vector layer's features as GeoJSON. Writes need `If-Match` with the version you read."""

    serializer_class = FeatureSerializer
    queryset = Feature.objects.unscoped().none()  # for the OpenAPI schema only
    pagination_class = FeatureCursorPagination
    lookup_value_regex = r"\d+"

    def get_permissions(self) -> list[Any]:
        if self.action in ("list", "retrieve", "attributes"):
            return [ReadOnlyForAnonymous()]
        return super().get_permissions()

    def _access(self, action: LayerAction = LayerAction.VIEW) -> LayerAccess:
        access = selectors.layer_access(self.actor, self.kwargs["layer_pk"], action=action)
        self.enter(access.layer)
        return access

    def _features(self, access: LayerAccess) -> QuerySet[Feature]:
        params = self.request.query_params
        raw_bbox = params.get("bbox")
        conditions = parse_filters(params, access.layer.attribute_schema)
        bbox = parse_bbox(raw_bbox) if raw_bbox else None
        return selectors.features_of(access.layer, bbox=bbox, conditions=conditions)

    @extend_schema(parameters=[OpenApiParameter("bbox", str, description="west,south,east,north (degrees)")])
    def list(self, request: Request, layer_pk: str) -> Response:
        page = self.paginate_queryset(self._features(self._access()))
        return self.get_paginated_response(FeatureSerializer(page, many=True).data["features"])

    @extend_schema(
        parameters=[OpenApiParameter("bbox", str, description="west,south,east,north (degrees)")],
        responses=FeatureAttributesSerializer(many=True),
    )
    @action(detail=False, methods=["get"], pagination_class=CursorPagination)
    def attributes(self, request: Request, layer_pk: str) -> Response:
        """Attributes only (no geometry), for tables."""
        features = self._features(self._access()).only("id", "version", "external_id", "properties", "updated_at")
        page = self.paginate_queryset(features)
        return self.get_paginated_response(FeatureAttributesSerializer(page, many=True).data)

    @extend_schema(request=GeoJSONFeatureInputSerializer, responses={201: FeatureSerializer})
    def create(self, request: Request, layer_pk: str) -> Response:
        """One GeoJSON Feature, or a FeatureCollection for a bulk create (all or nothing)."""
        access = self._access(LayerAction.EDIT)
        inputs = self._feature_inputs(request.data)
        is_collection = request.data.get("type") == "FeatureCollection"
        features = services.features_create(access=access, user=request.user, inputs=inputs, collection=is_collection)
        if is_collection:
            return Response(FeatureSerializer(features, many=True).data, status=status.HTTP_201_CREATED)
        return Response(
            FeatureSerializer(features[0]).data, status=status.HTTP_201_CREATED, headers={"ETag": _etag(features[0])}
        )

    def _feature_inputs(self, data: Any) -> list[services.FeatureInput]:
        if not isinstance(data, dict):
            raise ValidationError({"type": ["Send a GeoJSON Feature or FeatureCollection object."]})
        if data.get("type") == "FeatureCollection":
            unknown = sorted(set(data) - {"type", "features"})
            if unknown:
                raise ValidationError({name: ["Unknown field."] for name in unknown})
            items = data.get("features")
            if not isinstance(items, list) or not items:
                raise ValidationError({"features": ["A non-empty list of GeoJSON Features is required."]})
            if len(items) > settings.FEATURE_BULK_MAX:
                raise ValidationError(
                    {"features": [f"At most {settings.FEATURE_BULK_MAX} per request; import larger sets."]}
                )
        else:
            items = [data]
        inputs = []
        for index, item in enumerate(items):
            serializer = GeoJSONFeatureInputSerializer(data=item)
            if not serializer.is_valid():
                prefix = f"features[{index}]" if len(items) > 1 or data.get("type") == "FeatureCollection" else None
                raise ValidationError({prefix: serializer.errors} if prefix else serializer.errors)
            valid = serializer.validated_data
            inputs.append(services.FeatureInput(valid["geometry"], valid.get("properties"), valid.get("external_id")))
        return inputs

    def retrieve(self, request: Request, layer_pk: str, pk: str) -> Response:
        feature = selectors.feature_in(self._access().layer, pk)
        return Response(FeatureSerializer(feature).data, headers={"ETag": _etag(feature)})

    def _write(self, request: Request, pk: str, *, replace: bool) -> Response:
        access = self._access(LayerAction.EDIT)
        serializer_class = GeoJSONFeatureInputSerializer if replace else GeoJSONFeaturePatchSerializer
        data = self.validated_input(serializer_class, partial=not replace)
        selectors.feature_in(access.layer, pk)  # 404 before 428/412 for a feature that is not there
        feature = services.feature_update(
            access=access,
            user=request.user,
            feature_id=int(pk),
            base_version=_if_match_version(request),
            geometry=data.get("geometry"),
            properties=data.get("properties"),
            replace=replace,
        )
        return Response(FeatureSerializer(feature).data, headers={"ETag": _etag(feature)})

    @extend_schema(request=GeoJSONFeatureInputSerializer, responses=FeatureSerializer)
    def update(self, request: Request, layer_pk: str, pk: str) -> Response:
        """Replace geometry and properties (If-Match required)."""
        return self._write(request, pk, replace=True)

    @extend_schema(request=GeoJSONFeaturePatchSerializer, responses=FeatureSerializer)
    def partial_update(self, request: Request, layer_pk: str, pk: str) -> Response:
        """Change geometry and/or properties; properties merge, null removes (If-Match required)."""
        return self._write(request, pk, replace=False)

    def destroy(self, request: Request, layer_pk: str, pk: str) -> Response:
        access = self._access(LayerAction.EDIT)
        selectors.feature_in(access.layer, pk)
        services.feature_delete(
            access=access, user=request.user, feature_id=int(pk), base_version=_if_match_version(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
