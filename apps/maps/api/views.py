from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.collaboration.selectors import map_events_since
from apps.core.pagination import CursorPagination
from apps.layers.selectors import layer_access
from apps.maps import selectors, services
from apps.maps.api.serializers import (
    CollaborationSerializer,
    CollaboratorInviteSerializer,
    CollaboratorSerializer,
    CollaboratorUpdateSerializer,
    MapEventSerializer,
    MapInputSerializer,
    MapLayerAddSerializer,
    MapLayerSerializer,
    MapLayerUpdateSerializer,
    MapSerializer,
    MapUpdateSerializer,
    ReorderSerializer,
)
from apps.maps.models import Map, MapCollaborator, MapLayer
from apps.maps.permissions import MapAction
from apps.workspaces.api.base import UUID_PATTERN, ApiViewSet, ReadOnlyForAnonymous
from apps.workspaces.selectors import workspace_for


class EventCursorPagination(CursorPagination):
    ordering = "seq"
    page_size = 200


class MapViewSet(ApiViewSet):
    """Maps you can see: your workspaces' maps and maps shared with you. Public maps are readable by anyone."""

    serializer_class = MapSerializer
    queryset = Map.objects.unscoped().none()  # for the OpenAPI schema only
    lookup_value_regex = UUID_PATTERN

    def get_permissions(self) -> list[Any]:
        if self.action in ("retrieve", "layers", "events"):
            return [ReadOnlyForAnonymous()]
        return super().get_permissions()

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "actor": self.actor}

    def _map(self, action: MapAction = MapAction.VIEW) -> Map:
        return self.enter(selectors.map_for(self.actor, self.kwargs["pk"], action=action))

    @extend_schema(parameters=[OpenApiParameter("workspace", str, description="Only this workspace (slug).")])
    def list(self, request: Request) -> Response:
        workspace_slug = request.query_params.get("workspace")
        workspace_id = workspace_for(self.actor, workspace_slug).pk if workspace_slug else None
        maps = selectors.maps_visible_to(self.actor, workspace_id=workspace_id).order_by("-updated_at")
        page = self.paginate_queryset(maps)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(request=MapInputSerializer, responses={201: MapSerializer})
    def create(self, request: Request) -> Response:
        data = self.validated_input(MapInputSerializer)
        workspace = workspace_for(self.actor, data.pop("workspace"))
        map = services.map_create(actor=self.actor, user=request.user, workspace=workspace, **data)
        return Response(self.get_serializer(map).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(self.get_serializer(self._map()).data)

    @extend_schema(request=MapUpdateSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        fields = self.validated_input(MapUpdateSerializer, partial=True)
        map = services.map_update(actor=self.actor, user=request.user, map=self._map(), fields=fields)
        return Response(self.get_serializer(map).data)

    def destroy(self, request: Request, pk: str) -> Response:
        services.map_delete(actor=self.actor, map=self._map())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=MapSerializer)
    @action(detail=True, methods=["post"], url_path="share-token/rotate")
    def rotate_share_token(self, request: Request, pk: str) -> Response:
        """Replace the public share link; the old link stops working."""
        map = services.map_share_token_rotate(actor=self.actor, user=request.user, map=self._map())
        return Response(self.get_serializer(map).data)

    @extend_schema(
        parameters=[OpenApiParameter("since", int, description="Only events after this seq.")],
        responses=MapEventSerializer(many=True),
    )
    @action(detail=True, methods=["get"], pagination_class=EventCursorPagination)
    def events(self, request: Request, pk: str) -> Response:
        """The map's activity log, oldest first; pass the last seq you saw as `since`."""
        events = map_events_since(self._map(), since=request.query_params.get("since"))
        page = self.paginate_queryset(events)
        return self.get_paginated_response(MapEventSerializer(page, many=True).data)

    @extend_schema(request=MapLayerAddSerializer, responses=MapLayerSerializer(many=True))
    @action(detail=True, methods=["get", "post"])
    def layers(self, request: Request, pk: str) -> Response:
        """The map's layers in drawing order (GET), or add a layer (POST)."""
        if request.method == "GET":
            return Response(MapLayerSerializer(selectors.map_layers_of(self._map()), many=True).data)
        data = self.validated_input(MapLayerAddSerializer)
        map = self._map(MapAction.EDIT)
        access = layer_access(self.actor, data.pop("layer"))
        entry = services.map_layer_add(
            actor=self.actor, user=request.user, map=map, layer=access.layer, layer_permissions=access.actions, **data
        )
        return Response(MapLayerSerializer(entry).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ReorderSerializer, responses=MapLayerSerializer(many=True))
    @action(detail=True, methods=["post"], url_path="layers/reorder")
    def reorder_layers(self, request: Request, pk: str) -> Response:
        """Set the drawing order: list every layer id on the map, bottom first."""
        layer_ids = [str(i) for i in self.validated_input(ReorderSerializer)["layers"]]
        entries = services.map_layers_reorder(
            actor=self.actor, user=request.user, map=self._map(MapAction.EDIT), layer_ids=layer_ids
        )
        return Response(MapLayerSerializer(entries, many=True).data)


class MapLayerViewSet(ApiViewSet):
    """One layer's placement on a map: visibility, opacity, removal."""

    serializer_class = MapLayerSerializer
    queryset = MapLayer.objects.unscoped().none()  # for the OpenAPI schema only
    lookup_field = "layer_id"
    lookup_value_regex = UUID_PATTERN

    def _entry(self):
        map = self.enter(selectors.map_for(self.actor, self.kwargs["map_pk"], action=MapAction.EDIT))
        return selectors.map_layer_on(map, self.kwargs["layer_id"])

    @extend_schema(request=MapLayerUpdateSerializer)
    def partial_update(self, request: Request, map_pk: str, layer_id: str) -> Response:
        fields = self.validated_input(MapLayerUpdateSerializer, partial=True)
        entry = services.map_layer_update(actor=self.actor, user=request.user, entry=self._entry(), fields=fields)
        return Response(self.get_serializer(entry).data)

    def destroy(self, request: Request, map_pk: str, layer_id: str) -> Response:
        services.map_layer_remove(actor=self.actor, user=request.user, entry=self._entry())
        return Response(status=status.HTTP_204_NO_CONTENT)


class CollaboratorViewSet(ApiViewSet):
    """People a map is shared with (managers invite, change and remove them)."""

    serializer_class = CollaboratorSerializer
    queryset = MapCollaborator.objects.unscoped().none()  # for the OpenAPI schema only
    lookup_value_regex = UUID_PATTERN

    def _map(self) -> Map:
        return self.enter(selectors.map_for(self.actor, self.kwargs["map_pk"], action=MapAction.MANAGE))

    def list(self, request: Request, map_pk: str) -> Response:
        return Response(self.get_serializer(selectors.collaborators_of(self._map()), many=True).data)

    @extend_schema(request=CollaboratorInviteSerializer, responses={201: CollaboratorSerializer})
    def create(self, request: Request, map_pk: str) -> Response:
        data = self.validated_input(CollaboratorInviteSerializer)
        collaborator = services.collaborator_invite(actor=self.actor, user=request.user, map=self._map(), **data)
        return Response(self.get_serializer(collaborator).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=CollaboratorUpdateSerializer)
    def partial_update(self, request: Request, map_pk: str, pk: str) -> Response:
        permission = self.validated_input(CollaboratorUpdateSerializer)["permission"]
        collaborator = selectors.collaborator_on(self._map(), pk)
        collaborator = services.collaborator_update(
            actor=self.actor, user=request.user, collaborator=collaborator, permission=permission
        )
        return Response(self.get_serializer(collaborator).data)

    def destroy(self, request: Request, map_pk: str, pk: str) -> Response:
        collaborator = selectors.collaborator_on(self._map(), pk)
        services.collaborator_remove(actor=self.actor, user=request.user, collaborator=collaborator)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CollaborationViewSet(ApiViewSet):
    """Maps shared with you: accept, decline, or leave (DELETE)."""

    serializer_class = CollaborationSerializer
    queryset = MapCollaborator.objects.unscoped().none()  # for the OpenAPI schema only
    lookup_value_regex = UUID_PATTERN

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(selectors.collaborations_for_user(request.user).order_by("-invited_at"))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str) -> Response:
        return Response(self.get_serializer(services.collaboration_accept(user=request.user, collaborator_id=pk)).data)

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["post"])
    def decline(self, request: Request, pk: str) -> Response:
        services.collaboration_decline(user=request.user, collaborator_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
