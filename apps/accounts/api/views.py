from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.api.serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenCreateSerializer,
    ApiTokenSerializer,
    MeUpdateSerializer,
    UserSerializer,
)
from apps.accounts.models import ApiToken, User
from apps.accounts.services import api_token_create, user_update
from apps.workspaces.api.base import ApiViewSet


class MeViewSet(ApiViewSet):
    """The signed-in user."""

    serializer_class = UserSerializer
    queryset = User.objects.none()  # for the OpenAPI schema only

    def list(self, request: Request) -> Response:
        return Response(UserSerializer(request.user).data)

    @extend_schema(request=MeUpdateSerializer, responses=UserSerializer)
    def partial_update(self, request: Request) -> Response:
        data = self.validated_input(MeUpdateSerializer, partial=True)
        if "name" in data:
            user_update(user=request.user, name=data["name"])
        return Response(UserSerializer(request.user).data)


class ApiTokenViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, ApiViewSet):
    """Your API tokens. The key is shown once, on creation; use it as `Authorization: Token <key>`."""

    serializer_class = ApiTokenSerializer
    lookup_value_regex = r"\d+"
    queryset = ApiToken.objects.none()  # for the OpenAPI schema only

    def get_queryset(self):
        return ApiToken.objects.filter(user=self.request.user)

    @extend_schema(request=ApiTokenCreateSerializer, responses={201: ApiTokenCreatedSerializer})
    def create(self, request: Request) -> Response:
        data = self.validated_input(ApiTokenCreateSerializer)
        token, key = api_token_create(user=request.user, **data)
        token.key = key
        return Response(ApiTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)
