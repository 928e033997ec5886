"""Writes for maps, their layers, collaborators and share links.

Each write runs in one transaction that also appends a `MapEvent`; the
broadcast goes out on commit (DESIGN §7).
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from apps.accounts.models import User
from apps.collaboration.broadcast import access_changed, map_access_changed
from apps.collaboration.services import map_event_append
from apps.core.errors import ApplicationError, Conflict, NotFound, PermissionDenied
from apps.layers.models import Layer
from apps.maps.models import Map, MapCollaborator, MapLayer, new_share_token
from apps.maps.permissions import Actor, LayerAction, MapAction, WorkspaceAction, map_actions, workspace_actions
from apps.workspaces.models import Workspace

# Fields any editor may change; the rest of a map's settings need MANAGE.
MAP_CONTENT_FIELDS = frozenset({"name", "description", "center", "zoom", "bearing", "pitch", "basemap"})
MAP_MANAGE_FIELDS = frozenset({"visibility"})


def _event(map: Map, user: User | None, type: str, payload: dict[str, Any]) -> None:
    map_event_append(
        workspace_id=map.workspace_id, map_id=map.pk, type=type, payload=payload, actor_id=getattr(user, "pk", None)
    )


def _require_map(actor: Actor, map: Map, action: MapAction) -> None:
    allowed = map_actions(actor, map)
    if MapAction.VIEW not in allowed:
        raise NotFound()
    if action not in allowed:
        raise PermissionDenied(f"You may not {action} this map.")


def _jsonable(value: Any) -> Any:
    return value.geojson if hasattr(value, "geojson") else value


@transaction.atomic
def map_create(*, actor: Actor, user: User, workspace: Workspace, **fields: Any) -> Map:
    allowed = workspace_actions(actor, workspace.pk)
    if not allowed:
        raise NotFound()
    if WorkspaceAction.CREATE not in allowed:
        raise PermissionDenied("Viewers cannot create maps.")
    map = Map(workspace=workspace, created_by=user, **fields)
    map.full_clean(exclude=["workspace", "created_by", "layers"], validate_unique=False, validate_constraints=False)
    map.save()
    _event(map, user, "map.created", {"name": map.name})
    return map


@transaction.atomic
def map_update(*, actor: Actor, user: User, map: Map, fields: dict[str, Any]) -> Map:
    unknown = set(fields) - MAP_CONTENT_FIELDS - MAP_MANAGE_FIELDS
    if unknown:
        raise ApplicationError("This field cannot be changed.", field=sorted(unknown)[0])
    _require_map(actor, map, MapAction.MANAGE if set(fields) & MAP_MANAGE_FIELDS else MapAction.EDIT)
    for name, value in fields.items():
        setattr(map, name, value)
    map.save(update_fields=[*fields, "updated_at"])
    _event(map, user, "map.updated", {name: _jsonable(value) for name, value in fields.items()})
    if "visibility" in fields:
        transaction.on_commit(lambda: _notify_map_audience_changed(map))
    return map


def _notify_map_audience_changed(map: Map) -> None:
    map_access_changed(map_id=map.pk, workspace_id=map.workspace_id)


@transaction.atomic
def map_delete(*, actor: Actor, map: Map) -> None:
    _require_map(actor, map, MapAction.MANAGE)
    map_id, workspace_id = map.pk, map.workspace_id
    map.delete()
    # Open sockets re-check access, find the map gone and close.
    transaction.on_commit(lambda: map_access_changed(map_id=map_id, workspace_id=workspace_id))


@transaction.atomic
def map_share_token_rotate(*, actor: Actor, user: User, map: Map) -> Map:
    """A new share link; the old one stops working at once."""
    _require_map(actor, map, MapAction.MANAGE)
    map.share_token = new_share_token()
    map.save(update_fields=["share_token", "updated_at"])
    _event(map, user, "map.share_token_rotated", {})
    transaction.on_commit(lambda: _notify_map_audience_changed(map))
    return map


# --- layers on a map ------------------------------------------------------------


@transaction.atomic
def map_layer_add(
    *, actor: Actor, user: User, map: Map, layer: Layer, layer_permissions: frozenset[LayerAction], **fields: Any
) -> MapLayer:
    _require_map(actor, map, MapAction.EDIT)
    if layer.workspace_id != map.workspace_id or LayerAction.VIEW not in layer_permissions:
        raise NotFound("Layer not found.")
    scoped = MapLayer.objects.for_workspace(map.workspace_id)
    if "display_order" not in fields:
        top = scoped.filter(map=map).aggregate(top=Max("display_order"))["top"]
        fields["display_order"] = 0 if top is None else top + 1
    try:
        with transaction.atomic():
            entry = scoped.create(workspace_id=map.workspace_id, map=map, layer=layer, **fields)
    except IntegrityError:
        raise Conflict("This layer is already on the map.", field="layer") from None
    _event(map, user, "map.layer_added", {"layer": str(layer.pk), **fields})
    return entry


@transaction.atomic
def map_layer_update(*, actor: Actor, user: User, entry: MapLayer, fields: dict[str, Any]) -> MapLayer:
    _require_map(actor, entry.map, MapAction.EDIT)
    for name, value in fields.items():
        setattr(entry, name, value)
    entry.save(update_fields=[*fields, "updated_at"])
    _event(entry.map, user, "map.layer_updated", {"layer": str(entry.layer_id), **fields})
    return entry


@transaction.atomic
def map_layer_remove(*, actor: Actor, user: User, entry: MapLayer) -> None:
    _require_map(actor, entry.map, MapAction.EDIT)
    entry.delete()
    _event(entry.map, user, "map.layer_removed", {"layer": str(entry.layer_id)})


@transaction.atomic
def map_layers_reorder(*, actor: Actor, user: User, map: Map, layer_ids: list[str]) -> list[MapLayer]:
    """Set the drawing order; `layer_ids` must list every layer on the map exactly once."""
    _require_map(actor, map, MapAction.EDIT)
    entries = {
        str(e.layer_id): e for e in MapLayer.objects.for_workspace(map.workspace_id).select_for_update().filter(map=map)
    }
    if len(layer_ids) != len(set(layer_ids)) or set(layer_ids) != set(entries):
        raise ApplicationError("List every layer on the map exactly once.", field="layers")
    ordered = [entries[layer_id] for layer_id in layer_ids]
    for position, entry in enumerate(ordered):
        entry.display_order = position
    MapLayer.objects.for_workspace(map.workspace_id).bulk_update(ordered, ["display_order"])
    _event(map, user, "map.layers_reordered", {"layers": layer_ids})
    return ordered


# --- collaborators ----------------------------------------------------------------


def _send_collaboration_email(collaborator: MapCollaborator) -> None:
    from django.conf import settings
    from django.core.mail import send_mail

    send_mail(
        subject=f"“{collaborator.map.name}” was shared with you on Meridian",
        message=(
            f"{collaborator.invited_by or 'Someone'} gave you {collaborator.permission} access to the map "
            f"“{collaborator.map.name}”.\n\nOpen your invitations: {settings.SITE_URL}/api/v1/collaborations/\n"
        ),
        from_email=None,
        recipient_list=[collaborator.email],
    )


@transaction.atomic
def collaborator_invite(*, actor: Actor, user: User, map: Map, email: str, permission: str) -> MapCollaborator:
    """Share a map with someone by email; they need not be a workspace member."""
    _require_map(actor, map, MapAction.MANAGE)
    email = email.strip().lower()
    invitee = User.objects.filter(email__iexact=email).first()
    try:
        with transaction.atomic():
            collaborator = MapCollaborator.objects.for_workspace(map.workspace_id).create(
                workspace_id=map.workspace_id,
                map=map,
                email=email,
                user=invitee,
                permission=permission,
                invited_by=user,
            )
    except IntegrityError:
        raise Conflict(f"{email} is already a collaborator on this map.", field="email") from None
    _event(map, user, "map.collaborator_invited", {"collaborator": str(collaborator.pk), "permission": permission})
    transaction.on_commit(lambda: _send_collaboration_email(collaborator))
    return collaborator


@transaction.atomic
def collaborator_update(*, actor: Actor, user: User, collaborator: MapCollaborator, permission: str) -> MapCollaborator:
    _require_map(actor, collaborator.map, MapAction.MANAGE)
    collaborator.permission = permission
    collaborator.save(update_fields=["permission", "updated_at"])
    _event(
        collaborator.map,
        user,
        "map.collaborator_updated",
        {"collaborator": str(collaborator.pk), "permission": permission},
    )
    if collaborator.user_id:
        uid, map_id = collaborator.user_id, collaborator.map_id
        transaction.on_commit(lambda: access_changed(user_id=uid, map_id=map_id))
    return collaborator


@transaction.atomic
def collaborator_remove(*, actor: Actor, user: User, collaborator: MapCollaborator) -> None:
    """Revoke a grant (a collaborator may also remove themselves). Their sockets close."""
    if collaborator.user_id != actor.user_id:
        _require_map(actor, collaborator.map, MapAction.MANAGE)
    collaborator.delete()
    _event(collaborator.map, user, "map.collaborator_removed", {"collaborator": str(collaborator.pk)})
    if collaborator.user_id:
        uid, map_id = collaborator.user_id, collaborator.map_id
        transaction.on_commit(lambda: access_changed(user_id=uid, map_id=map_id))


def _own_collaboration(user: User, collaborator_id: object) -> MapCollaborator:
    from apps.maps.selectors import collaborations_for_user

    collaborator = collaborations_for_user(user).select_for_update(of=("self",)).filter(pk=collaborator_id).first()
    if collaborator is None:
        raise NotFound()
    return collaborator


@transaction.atomic
def collaboration_accept(*, user: User, collaborator_id: object) -> MapCollaborator:
    collaborator = _own_collaboration(user, collaborator_id)
    if collaborator.accepted_at is None:
        collaborator.user = user
        collaborator.accepted_at = timezone.now()
        collaborator.save(update_fields=["user", "accepted_at", "updated_at"])
        _event(collaborator.map, user, "map.collaborator_joined", {"collaborator": str(collaborator.pk)})
    return collaborator


@transaction.atomic
def collaboration_decline(*, user: User, collaborator_id: object) -> None:
    collaborator = _own_collaboration(user, collaborator_id)
    collaborator.delete()
    _event(collaborator.map, user, "map.collaborator_declined", {"collaborator": str(collaborator.pk)})
