"""Async PostgreSQL and Redis clients for the warm-tile route, one set per event loop.

Django's pool and django-redis are synchronous: calling them from the route would hop
to a thread per request, which is the cost the route exists to avoid. These clients
read the same database and the same cache (keys and values in django-redis's format).
"""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import redis.asyncio as aioredis
from django.conf import settings
from django.db import connection
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

MAX_CONNECTIONS = 4  # per process: a warm tile holds a connection for one short query

_clients: dict[asyncio.AbstractEventLoop, tuple[AsyncConnectionPool, aioredis.Redis]] = {}


def _conninfo() -> str:
    params = connection.get_connection_params()  # the test database too, once pytest has switched to it
    keys = ("host", "port", "user", "password", "dbname", "options")
    return make_conninfo(**{key: params[key] for key in keys if params.get(key) not in (None, "")})


async def _clients_for_loop() -> tuple[AsyncConnectionPool, aioredis.Redis]:
    loop = asyncio.get_running_loop()
    if loop not in _clients:
        # Autocommit: one read needs no BEGIN, nor the ROLLBACK the pool would send on its return.
        pool = AsyncConnectionPool(
            _conninfo(), min_size=1, max_size=MAX_CONNECTIONS, open=False, kwargs={"autocommit": True}
        )
        await pool.open()
        _clients[loop] = (pool, aioredis.Redis.from_url(settings.CACHES["default"]["LOCATION"]))
    return _clients[loop]


async def fetch_one(sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
    pool, _redis = await _clients_for_loop()
    async with pool.connection() as conn:
        cursor = await conn.execute(sql, params, prepare=True)
        return await cursor.fetchone()


async def cache_get(key: str) -> Any:
    """`cache.get(key)` without the thread hop; None when missing. `key` is unprefixed, as for `cache`."""
    [value] = await cache_get_many([key])
    return value


async def cache_get_many(keys: list[str | None]) -> list[Any]:
    """`cache_get` of each key in one round trip (MGET); None for a missing key, or where `keys` has None."""
    from django.core.cache import cache

    wanted = [key for key in keys if key is not None]
    if not wanted:
        return [None] * len(keys)
    _pool, redis = await _clients_for_loop()
    found = iter(await redis.mget([cache.make_and_validate_key(key) for key in wanted]))
    return [None if key is None else _decoded(next(found)) for key in keys]


def _decoded(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return int(raw)  # django-redis stores integers bare and pickles everything else
    except (ValueError, TypeError):
        return pickle.loads(raw)  # noqa: S301 (our own cache, written by django-redis)


async def close_for_loop() -> None:
    """Close this loop's clients (tests run each case in a fresh loop)."""
    found = _clients.pop(asyncio.get_running_loop(), None)
    if found is not None:
        await found[0].close()
        await found[1].aclose()
