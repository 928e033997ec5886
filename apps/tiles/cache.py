"""The tile cache: Redis, keyed by (layer, data_version, filters, z/x/y).

A committed edit bumps the layer's data_version, so the next request builds a
new key: no stale tile is ever served and nothing needs deleting (old keys
expire). The ETag is derived from the same key.
"""

from __future__ import annotations

import hashlib

from django.core.cache import cache

from apps.layers.filters import Condition, filters_key
from apps.layers.models import Layer

TILE_TTL_SECONDS = 24 * 60 * 60


def tile_key(layer: Layer, conditions: tuple[Condition, ...], z: int, x: int, y: int) -> str:
    return tile_key_at(layer.pk, layer.data_version, conditions, z, x, y)


def tile_key_at(layer_id: object, data_version: int, conditions: tuple[Condition, ...], z: int, x: int, y: int) -> str:
    return f"tile:{layer_id}:{data_version}:{filters_key(conditions)}:{z}/{x}/{y}"


def etag_for(key: str) -> str:
    return '"' + hashlib.sha1(key.encode()).hexdigest()[:20] + '"'  # noqa: S324 (an ETag, not security)


def cached_tile(key: str) -> bytes | None:
    """The gzipped tile (b"" for an empty one), or None when not cached."""
    return cache.get(key)


def store_tile(key: str, gzipped: bytes) -> None:
    cache.set(key, gzipped, timeout=TILE_TTL_SECONDS)
