from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet
from django.utils.crypto import constant_time_compare

from apps.accounts.models import User
from apps.collaboration.models import MapEvent
from apps.core.errors import ApplicationError, NotFound
from apps.maps.models import Map
from apps.maps.permissions import Actor, MapAction, map_actions
from apps.maps.selectors import actor_for, map_for, map_for_lean


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


# --- the map socket ---------------------------------------------------------------------


@dataclass(frozen=True)
class SocketAdmission:
    """What a websocket connection may do on a map, judged by `apps.maps.permissions`."""

    map: Map
    actor: Actor
    actions: frozenset[MapAction]


def socket_admission(
    user: User | AnonymousUser, map_id: UUID | str, *, share_token: str | None, lean: bool = False
) -> SocketAdmission | None:
    """None when the map is missing or invisible (never told apart), or the share link given is not current.

    A connection opened with `?share=<token>` stays admitted only while that
    token is the map's current one, so rotating the link closes it. `lean`: the
    map is `map_for_lean`'s instance, enough for writes that never save or show it.
    """
    actor = actor_for(user, share_token=share_token)
    try:
        map = (map_for_lean if lean else map_for)(actor, map_id)
    except NotFound:
        return None
    if share_token is not None and not constant_time_compare(share_token, map.share_token):
        return None
    return SocketAdmission(map=map, actor=actor, actions=map_actions(actor, map))


@dataclass(frozen=True)
class Replay:
    events: list[MapEvent]
    last_seq: int
    complete: bool  # False: more than `limit` were missed, or the client is ahead of the log


def map_last_seq(map: Map) -> int:
    return Map.objects.unscoped().filter(pk=map.pk).values_list("last_event_seq", flat=True).first() or 0


def map_replay(map: Map, *, after: int, limit: int) -> Replay:
    """The events after seq `after` up to the map's newest, in order, if there are at most `limit`."""
    last_seq = map_last_seq(map)
    if after > last_seq:
        return Replay(events=[], last_seq=last_seq, complete=False)
    # Walks the (map, seq) unique index from `after`.
    events = list(map_events_since(map, since=after).filter(seq__lte=last_seq).order_by("seq")[: limit + 1])
    if len(events) > limit:
        return Replay(events=[], last_seq=last_seq, complete=False)
    return Replay(events=events, last_seq=last_seq, complete=True)
