from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.workspaces import selectors, services
from apps.workspaces.api.base import UUID_PATTERN, ApiViewSet
from apps.workspaces.api.serializers import (
    InvitationInputSerializer,
    InvitationSerializer,
    MembershipInputSerializer,
    MembershipSerializer,
    WorkspaceInputSerializer,
    WorkspaceSerializer,
)
from apps.workspaces.models import Workspace


class WorkspaceViewSet(ApiViewSet):
    """Your workspaces. Creating one makes you its owner."""

    serializer_class = WorkspaceSerializer
    lookup_field = "slug"

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "actor": self.actor}

    def get_queryset(self):
        return selectors.workspaces_for(self.actor)

    def _workspace(self) -> Workspace:
        return selectors.workspace_for(self.actor, self.kwargs["slug"])

    def _refreshed_context(self) -> dict[str, Any]:
        from apps.maps.selectors import actor_for

        return {**self.get_serializer_context(), "actor": actor_for(self.request.user)}

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(request=WorkspaceInputSerializer, responses={201: WorkspaceSerializer})
    def create(self, request: Request) -> Response:
        workspace = services.workspace_create(user=request.user, **self.validated_input(WorkspaceInputSerializer))
        return Response(WorkspaceSerializer(workspace, context=self._refreshed_context()).data, status=201)

    def retrieve(self, request: Request, slug: str) -> Response:
        return Response(self.get_serializer(self._workspace()).data)

    @extend_schema(request=WorkspaceInputSerializer)
    def partial_update(self, request: Request, slug: str) -> Response:
        fields = self.validated_input(WorkspaceInputSerializer, partial=True)
        workspace = services.workspace_update(actor=self.actor, workspace=self._workspace(), **fields)
        return Response(self.get_serializer(workspace).data)

    def destroy(self, request: Request, slug: str) -> Response:
        services.workspace_delete(actor=self.actor, workspace=self._workspace())
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberViewSet(ApiViewSet):
    """Members of a workspace. Admins change roles; anyone may leave (DELETE themselves)."""

    serializer_class = MembershipSerializer
    lookup_field = "user_id"
    lookup_value_regex = r"\d+"

    def _workspace(self) -> Workspace:
        return selectors.workspace_for(self.actor, self.kwargs["workspace_slug"])

    def get_queryset(self):
        return selectors.members_of(self._workspace())

    def list(self, request: Request, workspace_slug: str) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request: Request, workspace_slug: str, user_id: str) -> Response:
        return Response(self.get_serializer(selectors.membership_in(self._workspace(), user_id)).data)

    @extend_schema(request=MembershipInputSerializer)
    def partial_update(self, request: Request, workspace_slug: str, user_id: str) -> Response:
        membership = selectors.membership_in(self._workspace(), user_id)
        role = self.validated_input(MembershipInputSerializer)["role"]
        membership = services.membership_set_role(actor=self.actor, membership=membership, role=role)
        return Response(self.get_serializer(membership).data)

    def destroy(self, request: Request, workspace_slug: str, user_id: str) -> Response:
        membership = selectors.membership_in(self._workspace(), user_id)
        services.membership_remove(actor=self.actor, membership=membership)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WorkspaceInvitationViewSet(ApiViewSet):
    """Invitations sent from a workspace (admins)."""

    serializer_class = InvitationSerializer
    lookup_value_regex = UUID_PATTERN

    def _workspace(self) -> Workspace:
        return selectors.workspace_for(self.actor, self.kwargs["workspace_slug"])

    def get_queryset(self):
        return selectors.invitations_of(self._workspace())

    def list(self, request: Request, workspace_slug: str) -> Response:
        page = self.paginate_queryset(selectors.invitations_managed_by(self.actor, self._workspace()))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(request=InvitationInputSerializer, responses={201: InvitationSerializer})
    def create(self, request: Request, workspace_slug: str) -> Response:
        data = self.validated_input(InvitationInputSerializer)
        invitation = services.invitation_create(
            actor=self.actor, inviter=request.user, workspace=self._workspace(), **data
        )
        return Response(self.get_serializer(invitation).data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, workspace_slug: str, pk: str) -> Response:
        invitation = selectors.invitation_in(self._workspace(), pk)
        services.invitation_revoke(actor=self.actor, invitation=invitation)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MyInvitationViewSet(ApiViewSet):
    """Invitations addressed to you: accept or decline."""

    serializer_class = InvitationSerializer
    lookup_value_regex = UUID_PATTERN

    def get_queryset(self):
        return selectors.invitations_for_user(self.request.user)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(request=None, responses=MembershipSerializer)
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str) -> Response:
        membership = services.invitation_accept(user=request.user, invitation_id=pk)
        return Response(MembershipSerializer(membership).data)

    @extend_schema(request=None, responses=InvitationSerializer)
    @action(detail=True, methods=["post"])
    def decline(self, request: Request, pk: str) -> Response:
        return Response(self.get_serializer(services.invitation_decline(user=request.user, invitation_id=pk)).data)
