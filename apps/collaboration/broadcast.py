"""Fan-out to websocket clients through the Redis channel layer.

Called from `transaction.on_commit`, so nobody hears of a write that rolled back.
A failed publish is logged, never raised: the write has committed and clients
catch up from the event log by seq when they reconnect.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from apps.collaboration.models import MapEvent

logger = logging.getLogger(__name__)


def map_group(map_id: UUID | str) -> str:
    return f"map.{map_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def event_message(event: MapEvent) -> dict[str, Any]:
    return {
        "type": "event",
        "seq": event.seq,
        "event_id": event.pk,
        "event": event.type,
        "payload": event.payload,
        "actor": event.actor_id,
        "at": event.created_at.isoformat(),
    }


def _send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:  # the write committed; clients resync from the log
        logger.exception("broadcast to %s failed", group)


def publish_map_event(event: MapEvent) -> None:
    _send(map_group(event.map_id), {"type": "map.event", "message": event_message(event)})


def access_changed(*, user_id: int, workspace_id: object | None = None, map_id: object | None = None) -> None:
    """Ask the user's open sockets to re-check their access (and close if it is gone)."""
    _send(user_group(user_id), {"type": "access.changed", "workspace_id": str(workspace_id), "map_id": str(map_id)})


def map_access_changed(*, map_id: object, workspace_id: object) -> None:
    """Everyone on the map re-checks access (visibility changed, share link rotated)."""
    _send(map_group(str(map_id)), {"type": "access.changed", "workspace_id": str(workspace_id), "map_id": str(map_id)})


def publish_job_progress(message: dict[str, Any], *, owner_id: int | None, map_ids: list[UUID]) -> None:
    """A job's state to its owner's sockets (with `error`) and to the sockets of the maps showing it (without).

    The map copy names the owner so the owner's own map sockets, which also hear
    the user-group copy, can skip it.
    """
    if owner_id is not None:
        _send(user_group(owner_id), {"type": "job.progress", "message": message})
    shared = {**message, "error": None}
    for map_id in map_ids:
        _send(map_group(map_id), {"type": "job.progress", "message": shared, "owner": owner_id})
