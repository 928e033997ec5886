"""The base every API view stands on: the actor is resolved once, tenancy is explicit.

Objects are fetched through access selectors (`map_for`, `layer_access`…)
that answer 404 for missing and invisible alike; the workspace of the object
is then entered, so any tenant-owned query in the rest of the request is
scoped to it and a query outside it fails loudly.
"""

from __future__ import annotations

from typing import Any

from rest_framework import viewsets
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.serializers import Serializer

from apps.maps.permissions import Actor
from apps.maps.selectors import actor_for
from apps.workspaces.tenancy import activate_workspace

SHARE_TOKEN_HEADER = "X-Share-Token"  # noqa: S105 (a header name)
# Route ids are UUIDs; anything else is a 404 at the URL, never a 400 from the database.
UUID_PATTERN = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


class ReadOnlyForAnonymous(BasePermission):
    """Anonymous visitors may read (public maps and their layers); the object checks decide the rest."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return request.method in SAFE_METHODS or bool(request.user and request.user.is_authenticated)


def request_actor(request: Request) -> Actor:
    cached = getattr(request, "_meridian_actor", None)
    if cached is None:
        share_token = request.headers.get(SHARE_TOKEN_HEADER) or request.query_params.get("share_token")
        cached = actor_for(request.user, share_token=share_token)
        request._meridian_actor = cached
    return cached


class ApiViewSet(viewsets.GenericViewSet):
    permission_classes = [IsAuthenticated]

    @property
    def actor(self) -> Actor:
        return request_actor(self.request)

    def enter(self, obj: Any) -> Any:
        """Enter the object's workspace for the rest of the request; returns the object."""
        activate_workspace(obj.workspace_id)
        return obj

    def validated_input(self, serializer_class: type[Serializer], *, partial: bool = False) -> dict[str, Any]:
        serializer = serializer_class(data=self.request.data, partial=partial, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)
