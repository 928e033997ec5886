"""/api/v1/ — every resource of the REST API (DESIGN §5)."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import DefaultRouter, SimpleRouter

from apps.accounts.api.views import ApiTokenViewSet, MeViewSet
from apps.comments.api.views import CommentViewSet
from apps.jobs.api.views import JobViewSet
from apps.layers.api.views import FeatureViewSet, LayerViewSet
from apps.maps.api.views import CollaborationViewSet, CollaboratorViewSet, MapLayerViewSet, MapViewSet
from apps.workspaces.api.views import (
    MemberViewSet,
    MyInvitationViewSet,
    WorkspaceInvitationViewSet,
    WorkspaceViewSet,
)

router = DefaultRouter()
router.register("workspaces", WorkspaceViewSet, basename="workspace")
router.register("maps", MapViewSet, basename="map")
router.register("layers", LayerViewSet, basename="layer")
router.register("comments", CommentViewSet, basename="comment")
router.register("jobs", JobViewSet, basename="job")
router.register("invitations", MyInvitationViewSet, basename="my-invitation")
router.register("collaborations", CollaborationViewSet, basename="collaboration")
router.register("me/tokens", ApiTokenViewSet, basename="api-token")

nested = SimpleRouter()
nested.register(r"workspaces/(?P<workspace_slug>[-\w]+)/members", MemberViewSet, basename="member")
nested.register(
    r"workspaces/(?P<workspace_slug>[-\w]+)/invitations", WorkspaceInvitationViewSet, basename="workspace-invitation"
)
nested.register(r"maps/(?P<map_pk>[0-9a-fA-F-]{32,36})/layers", MapLayerViewSet, basename="map-layer")
nested.register(r"maps/(?P<map_pk>[0-9a-fA-F-]{32,36})/collaborators", CollaboratorViewSet, basename="collaborator")
nested.register(r"layers/(?P<layer_pk>[0-9a-fA-F-]{32,36})/features", FeatureViewSet, basename="feature")

me = MeViewSet.as_view({"get": "list", "patch": "partial_update"})

urlpatterns = [
    path("me/", me, name="me"),
    path("", include("apps.imports.api.urls")),
    path("", include(nested.urls)),
    path("", include(router.urls)),
]
