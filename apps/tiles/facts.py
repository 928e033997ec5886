"""What the warm-tile route needs to decide access, in one query, judged by apps.maps.permissions.

The rules are not restated here: the row becomes the same lean `Layer`, `Map`s and `Actor`
that `layer_access_lean` and `actor_for` build, and `layer_actions` decides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from apps.layers.models import Layer
from apps.maps.models import Map, Visibility
from apps.maps.permissions import Actor, LayerAction, layer_actions
from apps.tiles import aio

# The layer by primary key, the maps holding it (maplayer (layer_id) index), and when a
# session names a user: their password hash (to verify the session's auth hash), whether
# they are active, their roles (membership user_id index) and accepted grants
# (mapcollaborator user_id index) — the _LEAN_LAYER_SQL and _ACTOR_SQL facts in one trip.
# An API token (key_hash unique index) names the user instead, with what
# `user_for_token_key` checks: its expiry and when it was last used.
TILE_FACTS_SQL = """
    SELECT l.workspace_id, l.data_version, l.is_global, l.created_by_id, l.editable, l.attribute_schema,
           coalesce((
               SELECT jsonb_agg(jsonb_build_array(m.id, m.visibility, m.created_by_id))
               FROM maps_maplayer ml JOIN maps_map m ON m.id = ml.map_id AND m.workspace_id = ml.workspace_id
               WHERE ml.layer_id = l.id
           ), '[]'),
           u.id, u.password, u.is_active, t.id IS NOT NULL, t.expires_at, t.last_used_at,
           coalesce((
               SELECT jsonb_agg(jsonb_build_array(ms.workspace_id, ms.role))
               FROM workspaces_membership ms WHERE ms.user_id = u.id
           ), '[]'),
           coalesce((
               SELECT jsonb_agg(jsonb_build_array(mc.map_id, mc.permission))
               FROM maps_mapcollaborator mc WHERE mc.user_id = u.id AND mc.accepted_at IS NOT NULL
           ), '[]')
    FROM layers_layer l
    LEFT JOIN accounts_apitoken t ON t.key_hash = %(token_hash)s
    LEFT JOIN accounts_user u ON u.id = coalesce(t.user_id, %(user)s)
    WHERE l.id = %(layer)s
"""


@dataclass(frozen=True)
class TileFacts:
    """The layer as the tile rules see it, and the session's user row when one was asked for."""

    layer: Layer
    maps: tuple[Map, ...]
    user_found: bool
    user_id: int | None
    user_password: str
    user_is_active: bool
    token_found: bool
    token_expires_at: datetime | None
    token_last_used_at: datetime | None
    roles: dict[UUID, str]
    grants: dict[UUID, str]

    @property
    def is_public(self) -> bool:
        return any(map.visibility == Visibility.PUBLIC for map in self.maps)

    def actor(self, user_id: int | None, share_token: str | None) -> Actor:
        """`actor_for`'s result: roles and grants for a user, else the share token or nobody."""
        if user_id is None:
            return Actor(share_token=share_token) if share_token else Actor()
        return Actor(user_id=user_id, roles=self.roles, grants=self.grants, share_token=share_token)

    def may_view(self, actor: Actor) -> bool:
        return LayerAction.VIEW in layer_actions(actor, self.layer, self.maps)


def _json(value: object) -> Any:
    return json.loads(value) if isinstance(value, str) else value  # type: ignore[return-value]


async def tile_facts(layer_id: UUID, user_id: int | None, token_hash: str | None = None) -> TileFacts | None:
    """None when the layer does not exist. The user is the token's when `token_hash` names one, else `user_id`."""
    row = await aio.fetch_one(TILE_FACTS_SQL, {"layer": layer_id, "user": user_id, "token_hash": token_hash})
    if row is None:
        return None
    workspace_id, data_version, is_global, created_by_id, editable, schema, maps_json = row[:7]
    found_user_id, password, is_active, token_found, token_expires_at, token_last_used_at = row[7:13]
    roles_json, grants_json = row[13:]
    layer = Layer(
        id=layer_id,
        workspace_id=workspace_id,
        data_version=data_version,
        is_global=is_global,
        created_by_id=created_by_id,
        editable=editable,
        attribute_schema=_json(schema),
    )
    maps = tuple(
        Map(id=UUID(map_id), workspace_id=workspace_id, visibility=visibility, created_by_id=creator)
        for map_id, visibility, creator in _json(maps_json)
    )
    return TileFacts(
        layer=layer,
        maps=maps,
        user_found=found_user_id is not None,
        user_password=password or "",
        user_is_active=bool(is_active),
        user_id=found_user_id,
        token_found=token_found,
        token_expires_at=token_expires_at,
        token_last_used_at=token_last_used_at,
        roles={UUID(ws): role for ws, role in _json(roles_json)},
        grants={UUID(m): grant for m, grant in _json(grants_json)},
    )
