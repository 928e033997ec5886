"""The map event log: every write to a map's content appends here in its own transaction."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db import connection, transaction

from apps.collaboration.models import MapEvent


def _next_seq(map_id: UUID) -> int:
    # The row lock on the map serialises writers per map, so seq is gapless;
    # it is held only until the writing transaction commits.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE maps_map SET last_event_seq = last_event_seq + 1 WHERE id = %s RETURNING last_event_seq",
            [map_id],
        )
        row = cursor.fetchone()
    if row is None:
        raise LookupError(f"map {map_id} does not exist")
    return int(row[0])


def map_event_append(
    *, workspace_id: UUID, map_id: UUID, type: str, payload: dict[str, Any], actor_id: int | None
) -> MapEvent:
    """Append an event; it is broadcast to the map's sockets only if the transaction commits."""
    if not connection.in_atomic_block:
        raise RuntimeError("map_event_append must run inside the writing transaction")
    event = MapEvent.objects.for_workspace(workspace_id).create(
        workspace_id=workspace_id, map_id=map_id, seq=_next_seq(map_id), type=type, payload=payload, actor_id=actor_id
    )
    from apps.collaboration.broadcast import publish_map_event

    transaction.on_commit(lambda: publish_map_event(event))
    return event


def map_events_append(
    *, workspace_id: UUID, map_ids: list[UUID], type: str, payload: dict[str, Any], actor_id: int | None
) -> list[MapEvent]:
    """The same event on several maps (a layer shown on many maps), in a stable lock order."""
    return [
        map_event_append(workspace_id=workspace_id, map_id=map_id, type=type, payload=payload, actor_id=actor_id)
        for map_id in sorted(set(map_ids))
    ]
