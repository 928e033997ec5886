"""Live cursors: the per-connection rate limit and the per-process coalescing of moves.

Cursors are ephemeral: never persisted, never queued behind a limit (a stale
cursor is worthless), and relayed through the channel layer in batches.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from apps.collaboration.protocol import CursorPosition

CURSOR_BATCH_SECONDS = 0.03


class TokenBucket:
    """Per-connection rate limit: `rate` tokens a second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.capacity = rate, float(burst)
        self.tokens, self.updated = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


# One batch on the channel layer: (connection id, that connection's position as JSON text).
CursorBatch = list[tuple[str, str]]


class CursorBatcher:
    """Coalesces this process's cursor moves on one map into one channel-layer message per window.

    A group_send per cursor costs one Redis publish per connection on the map; at
    50 people moving their mouse at 10 Hz that is tens of thousands of messages a
    second. Batching per process and window makes it a few dozen, for at most
    CURSOR_BATCH_SECONDS of added latency; only a connection's newest position is kept.
    Positions travel as JSON text, encoded once here rather than once per recipient.
    """

    def __init__(self, layer: Any, group: str) -> None:
        self.layer = layer
        self.group = group
        self.pending: dict[str, CursorPosition] = {}
        self.flushing: asyncio.Task[None] | None = None

    def add(self, position: CursorPosition) -> None:
        self.pending[position.connection_id] = position
        if self.flushing is None:
            self.flushing = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(CURSOR_BATCH_SECONDS)
        pending, self.pending, self.flushing = self.pending, {}, None
        batch: CursorBatch = [(connection_id, p.model_dump_json()) for connection_id, p in pending.items()]
        await self.layer.group_send(self.group, {"type": "cursor.batch", "cursors": batch})


def cursors_frame(batch: CursorBatch, *, recipient: str) -> str | None:
    """The `cursors` frame for one recipient: everyone's position but its own (None: nothing to send).

    Spliced from the pre-encoded positions, so fanning a batch out to N sockets costs
    N string joins, not N JSON encodings; `protocol.Cursors` is the schema it follows.
    """
    positions = [text for connection_id, text in batch if connection_id != recipient]
    if not positions:
        return None
    return '{"type":"cursors","cursors":[' + ",".join(positions) + "]}"


_batchers: dict[tuple[int, int, str], CursorBatcher] = {}


def cursor_batcher(layer: Any, group: str) -> CursorBatcher:
    """One batcher per event loop, channel layer and map group (tests run several loops)."""
    key = (id(asyncio.get_running_loop()), id(layer), group)
    batcher = _batchers.get(key)
    if batcher is None:
        batcher = _batchers[key] = CursorBatcher(layer, group)
    return batcher
