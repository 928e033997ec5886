from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from apps.comments import selectors, services
from apps.comments.api.serializers import CommentInputSerializer, CommentSerializer, CommentUpdateSerializer
from apps.comments.models import Comment
from apps.layers.selectors import feature_in, layer_access
from apps.maps.selectors import map_for
from apps.workspaces.api.base import UUID_PATTERN, ApiViewSet

FILTER_PARAMETERS = [
    OpenApiParameter("map", str, description="Comments on this map (id)."),
    OpenApiParameter("layer", str, description="Comments on this layer (id)."),
    OpenApiParameter("feature", int, description="Comments pinned to this feature."),
    OpenApiParameter("parent", str, description="Replies in this thread; `none` for thread roots only."),
    OpenApiParameter("is_resolved", bool),
]


class CommentViewSet(ApiViewSet):
    """Threaded comments on maps and layers, optionally pinned to a feature or a point."""

    serializer_class = CommentSerializer
    queryset = Comment.objects.unscoped().none()  # for the OpenAPI schema only
    lookup_value_regex = UUID_PATTERN

    def _comment(self):
        comment, actions = selectors.comment_access(self.actor, self.kwargs["pk"])
        self.enter(comment)
        return comment, actions

    @extend_schema(parameters=FILTER_PARAMETERS)
    def list(self, request: Request) -> Response:
        comments = selectors.comments_visible_to(self.actor)
        params = request.query_params
        if params.get("map"):
            comments = comments.filter(map=map_for(self.actor, params["map"]))
        if params.get("layer"):
            comments = comments.filter(layer=layer_access(self.actor, params["layer"]).layer)
        if params.get("feature"):
            if not params["feature"].isdigit():
                raise ValidationError({"feature": ["Must be a feature id."]})
            comments = comments.filter(feature_id=int(params["feature"]))
        if params.get("parent"):
            comments = (
                comments.filter(parent__isnull=True)
                if params["parent"] == "none"
                else comments.filter(parent=selectors.comment_access(self.actor, params["parent"])[0])
            )
        if params.get("is_resolved") in ("true", "false"):
            comments = comments.filter(is_resolved=params["is_resolved"] == "true")
        page = self.paginate_queryset(comments.order_by("created_at", "id"))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(request=CommentInputSerializer, responses={201: CommentSerializer})
    def create(self, request: Request) -> Response:
        data = self.validated_input(CommentInputSerializer)
        target = self._target(data)
        comment = services.comment_create(
            user=request.user,
            body=data["body"],
            anchor=data.get("anchor"),
            anchor_zoom=data.get("anchor_zoom"),
            **target,
        )
        return Response(self.get_serializer(comment).data, status=status.HTTP_201_CREATED)

    def _target(self, data: dict[str, Any]) -> dict[str, Any]:
        """Resolve map / layer / parent / feature ids into objects the actor may see."""
        parent = None
        if "parent" in data:
            parent = selectors.comment_access(self.actor, data["parent"])[0]
            data.setdefault("map", parent.map_id)
            data.setdefault("layer", parent.layer_id)
        map = map_for(self.actor, data["map"]) if data.get("map") else None
        layer = layer_access(self.actor, data["layer"]).layer if data.get("layer") else None
        target = map or layer
        self.enter(target)
        rights = selectors.rights_on_map(self.actor, map) if map else selectors.rights_on_layer(self.actor, layer)
        feature = None
        if "feature" in data:
            if layer is None:
                raise ValidationError({"feature": ["Pin a feature on a layer comment (give layer)."]})
            feature = feature_in(layer, data["feature"])
        return {"rights": rights, "map": map, "layer": layer, "parent": parent, "feature": feature}

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(self.get_serializer(self._comment()[0]).data)

    @extend_schema(request=CommentUpdateSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        body = self.validated_input(CommentUpdateSerializer)["body"]
        comment, actions = self._comment()
        comment = services.comment_update(user=request.user, comment=comment, actions=actions, body=body)
        return Response(self.get_serializer(comment).data)

    def destroy(self, request: Request, pk: str) -> Response:
        comment, actions = self._comment()
        services.comment_delete(user=request.user, comment=comment, actions=actions)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str) -> Response:
        comment, actions = self._comment()
        comment = services.comment_set_resolved(user=request.user, comment=comment, actions=actions, resolved=True)
        return Response(self.get_serializer(comment).data)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def reopen(self, request: Request, pk: str) -> Response:
        comment, actions = self._comment()
        comment = services.comment_set_resolved(user=request.user, comment=comment, actions=actions, resolved=False)
        return Response(self.get_serializer(comment).data)
