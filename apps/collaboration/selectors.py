from __future__ import annotations

from django.db.models import QuerySet

from apps.collaboration.models import MapEvent
from apps.core.errors import ApplicationError
from apps.maps.models import Map


def map_events_since(map: Map, *, since: str | int | None) -> QuerySet[MapEvent]:
    """Events after `since` (a seq), in seq order — what a reconnecting client missed."""
    events = MapEvent.objects.for_workspace(map.workspace_id).filter(map=map)
    if since in (None, ""):
        return events
    try:
        since = int(since)
    except (TypeError, ValueError):
        raise ApplicationError("Must be an integer seq.", field="since") from None
    if since < 0:
        raise ApplicationError("Must be ≥ 0.", field="since")
    return events.filter(seq__gt=since)
