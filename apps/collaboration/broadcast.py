"""Fan-out to websocket clients through the Redis channel layer.

Called from `transaction.on_commit`, so nobody hears of a write that rolled back.
A failed publish is logged, never raised: the write has committed and clients
catch up from the event log by seq when they reconnect.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Coroutine
from typing import Any
from uuid import UUID

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


PUBLISH_TIMEOUT_SECONDS = 5


class _Publisher:
    """An event loop of its own, on its own thread, for publishes from synchronous code.

    `async_to_sync` called from a worker thread runs the coroutine on the server's
    event loop, where under load it queues behind thousands of cursor frames: the
    edit fan-out waited there longer than the write took. This loop only publishes.
    It is made again after a fork (Celery's pool), where the parent's thread is gone.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                self._loop, self._pid = asyncio.new_event_loop(), os.getpid()
                threading.Thread(target=self._loop.run_forever, name="channel-publisher", daemon=True).start()
            return self._loop

    def run(self, coroutine: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._running_loop()).result(PUBLISH_TIMEOUT_SECONDS)


_publisher = _Publisher()


def _send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        _publisher.run(layer.group_send(group, message))
    except Exception:  # the write committed; clients resync from the log
        logger.exception("broadcast to %s failed", group)


def publish_map_event(event: MapEvent) -> None:
    # The frame travels as JSON text, encoded once here rather than once per socket on the map.
    text = json.dumps(event_message(event))
    _send(map_group(event.map_id), {"type": "map.event", "seq": event.seq, "text": text})


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
