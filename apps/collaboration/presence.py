"""Who is on a map right now, kept in Redis so every ASGI node sees the same list.

Per map, a sorted set scores each connection with its expiry time and a hash
holds the member's JSON. A live connection pushes its expiry forward every
`HEARTBEAT_SECONDS`; a connection that dropped without saying goodbye (a
killed process, a lost network) stops doing so and is swept `TTL_SECONDS`
later by whichever connection on the map sweeps first. `ZREM` answers 1 to
exactly one sweeper, so exactly one `presence.leave` goes out per departure.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from django.conf import settings
from redis.asyncio import Redis

from apps.collaboration.protocol import PresenceMember

TTL_SECONDS = 10.0
HEARTBEAT_SECONDS = 3.0
# Whole keys of a map nobody visits any more disappear on their own.
KEY_TTL_SECONDS = 3600

# Distinct on a light basemap and for the common colour-vision deficiencies (Tol's "bright" + extras).
PALETTE = (
    "#4477aa",
    "#ee6677",
    "#228833",
    "#ccbb44",
    "#66ccee",
    "#aa3377",
    "#ee7733",
    "#009988",
    "#cc3311",
    "#33bbee",
    "#ee3377",
    "#997700",
)


def colour_for(user_id: int) -> str:
    """Stable across processes and restarts (unlike `hash()`), so a person keeps their colour."""
    digest = hashlib.sha256(str(user_id).encode()).digest()
    return PALETTE[digest[0] % len(PALETTE)]


def presence_redis() -> Redis:
    """A client for the presence store: its own setting, else the cache's Redis database."""
    url = getattr(settings, "PRESENCE_REDIS_URL", None) or settings.CACHES["default"]["LOCATION"]
    return Redis.from_url(url, decode_responses=True)


class PresenceStore:
    """The presence of one map. Each connection writes only its own entry."""

    def __init__(self, redis: Redis, map_id: str) -> None:
        self.redis = redis
        prefix = getattr(settings, "PRESENCE_KEY_PREFIX", "presence")
        self.expiry_key = f"{prefix}:{map_id}:expiry"
        self.members_key = f"{prefix}:{map_id}:members"

    async def save(self, member: PresenceMember) -> None:
        """Join, or rewrite one's entry (a new selection)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self.expiry_key, {member.connection_id: time.time() + TTL_SECONDS})
            pipe.hset(self.members_key, member.connection_id, member.model_dump_json())
            pipe.expire(self.expiry_key, KEY_TTL_SECONDS)
            pipe.expire(self.members_key, KEY_TTL_SECONDS)
            await pipe.execute()

    async def touch(self, connection_id: str) -> bool:
        """Push the expiry forward. False when the entry had been swept (the caller re-joins)."""
        changed = await self.redis.zadd(self.expiry_key, {connection_id: time.time() + TTL_SECONDS}, xx=True, ch=True)
        return bool(changed)

    async def leave(self, connection_id: str) -> bool:
        """Remove the entry; True only for the caller that actually removed it."""
        removed = await self.redis.zrem(self.expiry_key, connection_id)
        await self.redis.hdel(self.members_key, connection_id)
        return bool(removed)

    async def members(self) -> list[PresenceMember]:
        live = await self.redis.zrangebyscore(self.expiry_key, time.time(), "+inf")
        if not live:
            return []
        raw = await self.redis.hmget(self.members_key, live)
        return [PresenceMember.model_validate_json(item) for item in raw if item]

    async def sweep(self) -> list[dict[str, Any]]:
        """Remove expired entries; returns the ones this caller removed (for their `presence.leave`)."""
        expired = await self.redis.zrangebyscore(self.expiry_key, "-inf", time.time())
        gone: list[dict[str, Any]] = []
        for connection_id in expired:
            raw = await self.redis.hget(self.members_key, connection_id)
            if await self.leave(connection_id):
                user_id = PresenceMember.model_validate_json(raw).user_id if raw else None
                gone.append({"connection_id": connection_id, "user_id": user_id})
        return gone
