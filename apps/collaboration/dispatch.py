"""Message dispatch for consumers that reach the database only through `database_sync_to_async`."""

from __future__ import annotations

from typing import Any

from channels.consumer import get_handler_name


class AsyncOnlyDispatchMixin:
    """Channels' `dispatch` without its `close_old_connections` hop before every message.

    Channels runs that hop through `sync_to_async`, i.e. through the one thread of
    the process that also runs every database call, so each cursor frame and each
    broadcast queued behind the writes and behind each other: at 50 people on a
    map that thread, not the CPU, capped throughput. A consumer whose database work
    all goes through `database_sync_to_async` (which closes stale connections around
    each call itself) has nothing for the hop to clean up.
    """

    async def dispatch(self, message: dict[str, Any]) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)
