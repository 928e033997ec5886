"""Reads for maps, and the loading of the `Actor` the permission rules judge."""

from __future__ import annotations

from uuid import UUID

from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.db.models import Q, QuerySet

from apps.accounts.models import User
from apps.core.errors import NotFound, PermissionDenied
from apps.maps.models import Map, MapCollaborator, MapLayer, Visibility
from apps.maps.permissions import ANONYMOUS, Actor, MapAction, map_actions
from apps.workspaces.models import Role

# Every request loads its actor, so this is one plain query (indexes: membership
# (workspace, user) unique and mapcollaborator (map, user) unique, both led by user_id lookups).
_ACTOR_SQL = """
    SELECT 'role', workspace_id, role FROM workspaces_membership WHERE user_id = %(user)s
    UNION ALL
    SELECT 'grant', map_id, permission FROM maps_mapcollaborator
    WHERE user_id = %(user)s AND accepted_at IS NOT NULL
"""


def actor_for(user: User | AnonymousUser, *, share_token: str | None = None) -> Actor:
    """The user's workspace roles and accepted map grants, in one query."""
    if not user.is_authenticated:
        return Actor(share_token=share_token) if share_token else ANONYMOUS
    roles: dict[UUID, str] = {}
    grants: dict[UUID, str] = {}
    with connection.cursor() as cursor:
        cursor.execute(_ACTOR_SQL, {"user": user.pk})
        for kind, object_id, value in cursor.fetchall():
            (roles if kind == "role" else grants)[object_id] = value
    return Actor(user_id=user.pk, roles=roles, grants=grants, share_token=share_token)


def _visible_maps_predicate(actor: Actor) -> Q:
    """SQL twin of `map_actions(...)` containing VIEW, for lists (tested against it)."""
    admin_of = [ws for ws, role in actor.roles.items() if role in (Role.OWNER, Role.ADMIN)]
    member_of = list(actor.roles)
    return (
        Q(workspace_id__in=admin_of)
        | Q(workspace_id__in=member_of, visibility__in=[Visibility.WORKSPACE, Visibility.PUBLIC])
        | Q(workspace_id__in=member_of, created_by_id=actor.user_id)
        | Q(pk__in=list(actor.grants))
    )


def maps_visible_to(actor: Actor, *, workspace_id: UUID | None = None) -> QuerySet[Map]:
    """The maps an actor works with: their workspaces' maps they may see and maps shared with them.

    Public maps of other workspaces are reachable by link but not listed.
    """
    if not actor.is_authenticated:
        return Map.objects.none()
    maps = Map.objects.unscoped().filter(_visible_maps_predicate(actor))
    if workspace_id is not None:
        maps = maps.filter(workspace_id=workspace_id)
    return maps.select_related("workspace", "created_by")


def map_for(actor: Actor, map_id: UUID | str, *, action: MapAction = MapAction.VIEW) -> Map:
    """The map if the actor may `action` it. 404 when it is missing or invisible; 403 when visible only."""
    map = Map.objects.unscoped().select_related("workspace").filter(pk=map_id).first()
    if map is None:
        raise NotFound()
    allowed = map_actions(actor, map)
    if MapAction.VIEW not in allowed:
        raise NotFound()
    if action not in allowed:
        raise PermissionDenied(f"You may not {action} this map.")
    return map


# The fields `map_actions` judges by, and those a feature write's event needs (share token, seq).
_LEAN_MAP_SQL = (
    "SELECT workspace_id, visibility, created_by_id, share_token, last_event_seq FROM maps_map WHERE id = %s"
)


def map_for_lean(actor: Actor, map_id: UUID | str) -> Map:
    """`map_for` (VIEW) for hot paths: the same rules over a lean, unsaved instance from one plain query.

    It carries only the fields read here: callers that show or save the map use `map_for`.
    """
    try:
        map_uuid = UUID(str(map_id))
    except ValueError:
        raise NotFound() from None
    with connection.cursor() as cursor:
        cursor.execute(_LEAN_MAP_SQL, [map_uuid])
        row = cursor.fetchone()
    if row is None:
        raise NotFound()
    workspace_id, visibility, created_by_id, share_token, last_event_seq = row
    map = Map(
        id=map_uuid,
        workspace_id=workspace_id,
        visibility=visibility,
        created_by_id=created_by_id,
        share_token=share_token,
        last_event_seq=last_event_seq,
    )
    if MapAction.VIEW not in map_actions(actor, map):
        raise NotFound()
    return map


def public_map_by_share_token(token: str) -> Map:
    map = Map.objects.unscoped().filter(share_token=token, visibility=Visibility.PUBLIC).first()
    if map is None:
        raise NotFound()
    return map


def map_layers_of(map: Map) -> QuerySet[MapLayer]:
    return MapLayer.objects.for_workspace(map.workspace_id).filter(map=map).select_related("layer")


def map_layer_on(map: Map, layer_id: UUID | str) -> MapLayer:
    entry = map_layers_of(map).filter(layer_id=layer_id).first()
    if entry is None:
        raise NotFound()
    return entry


def collaborators_of(map: Map) -> QuerySet[MapCollaborator]:
    return MapCollaborator.objects.for_workspace(map.workspace_id).filter(map=map).select_related("user")


def collaborator_on(map: Map, collaborator_id: UUID | str) -> MapCollaborator:
    entry = collaborators_of(map).filter(pk=collaborator_id).first()
    if entry is None:
        raise NotFound()
    return entry


def collaborations_for_user(user: User) -> QuerySet[MapCollaborator]:
    """Grants addressed to the user (by account or by email), pending and accepted."""
    return (
        MapCollaborator.objects.unscoped()
        .filter(Q(user=user) | Q(user__isnull=True, email__iexact=user.email))
        .select_related("map", "invited_by")
    )
