"""The map event log: every write to a map's content appends here in its own transaction."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from django.utils import timezone

from apps.collaboration.models import MapEvent

# Takes the next seq and appends the event in one round trip. The row lock the
# UPDATE takes on the map serialises writers per map, so seq is gapless; it is
# held only until the writing transaction commits.
_APPEND_SQL = """
    WITH next AS (
        UPDATE maps_map SET last_event_seq = last_event_seq + 1 WHERE id = %(map)s RETURNING last_event_seq
    )
    INSERT INTO collaboration_mapevent (created_at, updated_at, workspace_id, map_id, seq, type, payload, actor_id)
    SELECT %(now)s, %(now)s, %(workspace)s, %(map)s, next.last_event_seq, %(type)s, %(payload)s::jsonb, %(actor)s
    FROM next
    RETURNING id, seq
"""

_appended: ContextVar[list[MapEvent] | None] = ContextVar("appended_map_events", default=None)


@contextmanager
def appended_map_events() -> Iterator[list[MapEvent]]:
    """Collects the events appended inside the block, so a caller can name the seq its write got."""
    events: list[MapEvent] = []
    token = _appended.set(events)
    try:
        yield events
    finally:
        _appended.reset(token)


def map_event_append(
    *, workspace_id: UUID, map_id: UUID, type: str, payload: dict[str, Any], actor_id: int | None
) -> MapEvent:
    """Append an event; it is broadcast to the map's sockets only if the transaction commits."""
    if not connection.in_atomic_block:
        raise RuntimeError("map_event_append must run inside the writing transaction")
    now = timezone.now()
    params = {
        "map": map_id,
        "now": now,
        "workspace": workspace_id,
        "type": type,
        "payload": json.dumps(payload),
        "actor": actor_id,
    }
    with connection.cursor() as cursor:
        cursor.execute(_APPEND_SQL, params)
        row = cursor.fetchone()
    if row is None:
        raise LookupError(f"map {map_id} does not exist")
    event = MapEvent(
        id=row[0],
        seq=row[1],
        workspace_id=workspace_id,
        map_id=map_id,
        type=type,
        payload=payload,
        actor_id=actor_id,
        created_at=now,
        updated_at=now,
    )
    if (collected := _appended.get()) is not None:
        collected.append(event)
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
