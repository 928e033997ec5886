"""Who may do what to workspaces, maps, layers, features and comments.

This module is the one place that decides. REST views, tile views, websocket
consumers and Celery tasks all ask it; none decides on its own. Every function
is pure: it looks only at the `Actor` (loaded once per request by
`apps.maps.selectors.actor_for`) and the objects passed in.

Rules (DESIGN §3):
- Workspace roles: owner ⊃ admin ⊃ editor ⊃ viewer.
- Map visibility: `private` (creator, workspace admins, collaborators),
  `workspace` (members view and comment, editors edit), `public` (anyone views,
  also through the share link; nobody edits without a role or a grant).
- Per-map grants (`MapCollaborator`, once accepted): view ⊂ comment ⊂ edit,
  for members and guests alike. A person gets the union of role and grant.
- Managing a map (settings, visibility, sharing, collaborators, deletion) is
  for workspace admins and the map's creator while they are an editor.
- Layers are workspace assets. A layer in the library (`is_global`) is visible
  to every member; any other layer is visible through the maps that hold it.
  `editable=creator` keeps a layer's features to its creator and admins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from uuid import UUID

from apps.maps.models import GRANT_RANK, Grant, Visibility
from apps.workspaces.models import ROLE_RANK, Role

if TYPE_CHECKING:
    from apps.comments.models import Comment
    from apps.layers.models import Layer
    from apps.maps.models import Map


class WorkspaceAction(StrEnum):
    VIEW = "view"  # see the workspace, its members and library
    CREATE = "create"  # create maps and layers
    MANAGE_MEMBERS = "manage_members"  # invite, change roles, remove
    MANAGE = "manage"  # rename, describe
    DELETE = "delete"


class MapAction(StrEnum):
    VIEW = "view"
    COMMENT = "comment"
    EDIT = "edit"  # content: layers on the map, features, styles, the view
    MANAGE = "manage"  # settings, visibility, collaborators, share link, delete


class LayerAction(StrEnum):
    VIEW = "view"
    EDIT = "edit"  # features and style
    MANAGE = "manage"  # metadata, editability, deletion


class CommentAction(StrEnum):
    VIEW = "view"
    REPLY = "reply"
    RESOLVE = "resolve"
    EDIT = "edit"
    DELETE = "delete"


ALL_MAP_ACTIONS = frozenset(MapAction)
ALL_LAYER_ACTIONS = frozenset(LayerAction)
NOTHING: frozenset[Any] = frozenset()


@dataclass(frozen=True)
class Actor:
    """Everything the rules need to know about who is asking."""

    user_id: int | None = None
    roles: Mapping[UUID, str] = field(default_factory=dict)  # workspace id → role
    grants: Mapping[UUID, str] = field(default_factory=dict)  # map id → accepted grant
    share_token: str | None = None

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None

    def role_in(self, workspace_id: UUID) -> str | None:
        return self.roles.get(workspace_id)

    def has_role(self, workspace_id: UUID, at_least: str) -> bool:
        role = self.roles.get(workspace_id)
        return role is not None and ROLE_RANK[Role(role)] >= ROLE_RANK[Role(at_least)]


ANONYMOUS = Actor()


# --- workspaces ---------------------------------------------------------------


def workspace_actions(actor: Actor, workspace_id: UUID) -> frozenset[WorkspaceAction]:
    role = actor.role_in(workspace_id)
    if role is None:
        return NOTHING
    actions = {WorkspaceAction.VIEW}
    if actor.has_role(workspace_id, Role.EDITOR):
        actions.add(WorkspaceAction.CREATE)
    if actor.has_role(workspace_id, Role.ADMIN):
        actions |= {WorkspaceAction.MANAGE_MEMBERS, WorkspaceAction.MANAGE}
    if role == Role.OWNER:
        actions.add(WorkspaceAction.DELETE)
    return frozenset(actions)


def may_assign_role(actor: Actor, workspace_id: UUID, *, current: str | None, new: str) -> bool:
    """Admins manage editors and viewers; only owners make or unmake owners and admins."""
    if actor.role_in(workspace_id) == Role.OWNER:
        return True
    if not actor.has_role(workspace_id, Role.ADMIN):
        return False
    touches_senior = {current, new} & {Role.OWNER, Role.ADMIN}
    return not touches_senior


# --- maps -----------------------------------------------------------------------

_ACTIONS_BY_GRANT = {
    Grant.VIEW: frozenset({MapAction.VIEW}),
    Grant.COMMENT: frozenset({MapAction.VIEW, MapAction.COMMENT}),
    Grant.EDIT: frozenset({MapAction.VIEW, MapAction.COMMENT, MapAction.EDIT}),
}


def _map_actions_from_role(actor: Actor, map: Map) -> frozenset[MapAction]:
    workspace_id = map.workspace_id
    role = actor.role_in(workspace_id)
    if role is None:
        return NOTHING
    if actor.has_role(workspace_id, Role.ADMIN):
        return ALL_MAP_ACTIONS
    is_creator = map.created_by_id is not None and map.created_by_id == actor.user_id
    if role == Role.EDITOR and is_creator:
        return ALL_MAP_ACTIONS
    if map.visibility == Visibility.PRIVATE and not is_creator:
        return NOTHING
    if role == Role.EDITOR:
        return frozenset({MapAction.VIEW, MapAction.COMMENT, MapAction.EDIT})
    return frozenset({MapAction.VIEW, MapAction.COMMENT})


def map_actions(actor: Actor, map: Map) -> frozenset[MapAction]:
    """What `actor` may do to `map`: the union of role, grant and public access."""
    actions = set(_map_actions_from_role(actor, map))
    grant = actor.grants.get(map.pk)
    if grant is not None:
        actions |= _ACTIONS_BY_GRANT[Grant(grant)]
    if map.visibility == Visibility.PUBLIC:
        actions.add(MapAction.VIEW)
    return frozenset(actions)


def can_view_map(actor: Actor, map: Map) -> bool:
    return MapAction.VIEW in map_actions(actor, map)


def grant_at_least(grant: str, minimum: str) -> bool:
    return GRANT_RANK[Grant(grant)] >= GRANT_RANK[Grant(minimum)]


# --- layers and features ----------------------------------------------------------


def _may_edit_layer_content(actor: Actor, layer: Layer) -> bool:
    from apps.layers.models import Editable

    is_creator = layer.created_by_id is not None and layer.created_by_id == actor.user_id
    return layer.editable == Editable.EVERYONE or is_creator


def layer_actions(actor: Actor, layer: Layer, maps: Iterable[Map] = ()) -> frozenset[LayerAction]:
    """What `actor` may do to `layer`, given the maps that hold it.

    `maps` must be every map the layer is on (or at least those the actor can
    reach); a layer reached through a map inherits that map's view and edit.
    """
    workspace_id = layer.workspace_id
    if actor.has_role(workspace_id, Role.ADMIN):
        return ALL_LAYER_ACTIONS
    is_creator = layer.created_by_id is not None and layer.created_by_id == actor.user_id
    is_editor = actor.has_role(workspace_id, Role.EDITOR)
    if is_editor and is_creator:
        return ALL_LAYER_ACTIONS

    actions: set[LayerAction] = set()
    if layer.is_global and actor.role_in(workspace_id) is not None:
        actions.add(LayerAction.VIEW)
        if is_editor and _may_edit_layer_content(actor, layer):
            actions.add(LayerAction.EDIT)
    for map in maps:
        if map.workspace_id != workspace_id:
            continue  # defence in depth: the database forbids this pairing
        on_map = map_actions(actor, map)
        if MapAction.VIEW in on_map:
            actions.add(LayerAction.VIEW)
        if MapAction.EDIT in on_map and _may_edit_layer_content(actor, layer):
            actions.add(LayerAction.EDIT)
    return frozenset(actions)


def can_edit_features(layer_permissions: frozenset[LayerAction]) -> bool:
    """Features have no rules of their own: editing them is editing the layer's content."""
    return LayerAction.EDIT in layer_permissions


# --- comments ---------------------------------------------------------------------


def may_comment_on_map(actor: Actor, map: Map) -> bool:
    return actor.is_authenticated and MapAction.COMMENT in map_actions(actor, map)


def may_comment_on_layer(actor: Actor, layer: Layer, maps: Iterable[Map] = ()) -> bool:
    """Members who can see a layer may discuss it; guests need a comment grant on one of its maps."""
    if not actor.is_authenticated:
        return False
    maps = list(maps)
    if actor.role_in(layer.workspace_id) is not None and LayerAction.VIEW in layer_actions(actor, layer, maps):
        return True
    return any(may_comment_on_map(actor, m) for m in maps if m.workspace_id == layer.workspace_id)


def comment_actions(
    actor: Actor,
    comment: Comment,
    *,
    target_viewable: bool,
    target_commentable: bool,
    target_manageable: bool,
) -> frozenset[CommentAction]:
    """What `actor` may do to `comment`, given their rights on its map or layer."""
    if not target_viewable:
        return NOTHING
    actions = {CommentAction.VIEW}
    is_author = comment.author_id is not None and comment.author_id == actor.user_id
    if target_commentable:
        actions |= {CommentAction.REPLY, CommentAction.RESOLVE}
        if is_author:
            actions.add(CommentAction.EDIT)
    if (is_author and target_commentable) or target_manageable:
        actions.add(CommentAction.DELETE)
    return frozenset(actions)
