"""An ASGI route in front of Django for warm layer tiles: the Redis hit without the request path.

It answers only a GET it can answer exactly as `apps.tiles.views.layer_tile` would — a
session (read from the cache the cached_db engine writes, its auth hash verified), a
current API token whose last use needs no recording, or nobody; valid attribute filters,
a visible layer, a tile already in the cache — and passes everything else to Django
unchanged: cache misses, invalid filters (Django's 400), unknown, expired or stale tokens, unknown or unverifiable
sessions, hidden layers (Django answers their 404), errors, any other method or path.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from functools import cache
from typing import Any
from urllib.parse import parse_qsl
from uuid import UUID

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.backends import ModelBackend
from django.contrib.sessions.backends.cached_db import KEY_PREFIX as SESSION_CACHE_PREFIX
from django.http.cookie import parse_cookie
from django.http.request import split_domain_port, validate_host
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.module_loading import import_string

from apps.accounts.authentication import LAST_USED_RESOLUTION
from apps.accounts.models import User, hash_token
from apps.core.errors import ApplicationError
from apps.layers.filters import parse_filters
from apps.layers.models import Layer
from apps.tiles import aio
from apps.tiles.cache import etag_for, tile_key, tile_key_at
from apps.tiles.facts import TileFacts, tile_facts
from apps.tiles.headers import MVT_CONTENT_TYPE, middleware_headers, tile_cache_control, tile_headers
from apps.tiles.mvt import tile_in_range

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

logger = logging.getLogger(__name__)

# Django's `uuid` and `int` path converters, anchored as the tile URL pattern.
TILE_PATH = re.compile(
    r"/tiles/layers/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/([0-9]+)/([0-9]+)/([0-9]+)\.mvt"
)
NOT_ANSWERED = None
HTML_TYPE = "text/html; charset=utf-8"  # what Django's bare HttpResponse(status=...) carries


class Fallthrough(Exception):
    """The route cannot answer exactly as Django would."""


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers; a repeated header makes the request Django's (it would join them)."""
    found: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        if name in found:
            raise Fallthrough
        found[name] = raw_value.decode("latin-1")
    return found


def _query(scope: Scope) -> dict[str, str]:
    """The query parameters, the last value winning (as QueryDict's `[]` and `.get`)."""
    raw = scope.get("query_string", b"")
    if not raw.isascii():
        raise Fallthrough
    pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True)
    limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    too_many = limit is not None and len(pairs) > limit  # Django's 400
    if too_many:
        raise Fallthrough
    return dict(pairs)


def _is_secure(scope: Scope, headers: dict[str, str]) -> bool:
    proxy = settings.SECURE_PROXY_SSL_HEADER
    if proxy:
        header = proxy[0].removeprefix("HTTP_").replace("_", "-").lower()
        if header in headers:
            return headers[header].split(",", 1)[0].strip() == proxy[1]
    return scope.get("scheme") == "https"


def _check_host(headers: dict[str, str]) -> None:
    """CommonMiddleware calls request.get_host() (a disallowed host is Django's 400) and may redirect or refuse."""
    if settings.USE_X_FORWARDED_HOST or settings.PREPEND_WWW or settings.DISALLOWED_USER_AGENTS:
        raise Fallthrough
    if "host" not in headers:
        raise Fallthrough
    domain, _port = split_domain_port(headers["host"])
    allowed = settings.ALLOWED_HOSTS or ([".localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])
    if not domain or not validate_host(domain, allowed):
        raise Fallthrough


@cache
def _backend_is_model_backend(path: str) -> bool:
    """Backends whose get_user is ModelBackend's: the user if active, else nobody."""
    if path not in settings.AUTHENTICATION_BACKENDS:
        return False
    backend = import_string(path)
    return (
        issubclass(backend, ModelBackend)
        and backend.get_user is ModelBackend.get_user
        and backend.user_can_authenticate is ModelBackend.user_can_authenticate
    )


def _session_cookie(headers: dict[str, str]) -> str | None:
    """The session cookie the route can follow (None: none sent); Fallthrough when Django may answer otherwise."""
    cookie = parse_cookie(headers.get("cookie", "")).get(settings.SESSION_COOKIE_NAME)
    if cookie is None:
        return None
    if settings.SESSION_ENGINE != "django.contrib.sessions.backends.cached_db" or settings.SESSION_SAVE_EVERY_REQUEST:
        raise Fallthrough  # another store, or Django would save the session and set the cookie again
    if len(cookie) < 8:
        raise Fallthrough  # an invalid key: Django deletes the cookie
    return cookie


def _session_user(cookie: str | None, session: Any) -> tuple[int | None, str]:
    """The signed-in user id and session auth hash (None: nobody); Fallthrough when Django may answer otherwise."""
    if cookie is None:
        return None, ""
    if not session:
        raise Fallthrough  # not cached (Django reads the database) or empty (Django deletes the cookie)
    if SESSION_KEY not in session:
        return None, ""
    if not _backend_is_model_backend(session.get(BACKEND_SESSION_KEY, "")) or not session.get(HASH_SESSION_KEY):
        raise Fallthrough
    return int(session[SESSION_KEY]), session[HASH_SESSION_KEY]


# Layer → its data_version and attribute schema as this process last found them. The tile they
# give is fetched with the session, in one Redis round trip before the facts query; it is used
# only when the facts give the same key (version, filters, access checked), else that key is
# fetched after them.
_last_seen: dict[UUID, tuple[int, dict[str, str]]] = {}
_LAST_SEEN_MAX = 10_000  # a guess per layer; forgetting them all only costs a round trip


def _remember(layer: Layer) -> None:
    if len(_last_seen) >= _LAST_SEEN_MAX and layer.pk not in _last_seen:
        _last_seen.clear()
    _last_seen[layer.pk] = (layer.data_version, layer.attribute_schema)


def _guessed_key(layer_id: UUID, query: dict[str, str], z: int, x: int, y: int) -> str | None:
    if layer_id not in _last_seen:
        return None
    data_version, schema = _last_seen[layer_id]
    try:
        return tile_key_at(layer_id, data_version, parse_filters(query, schema), z, x, y)
    except ApplicationError:
        return None


def _api_token_hash(headers: dict[str, str], cookie: str | None) -> str | None:
    """The stored hash of an `Authorization: Token|Bearer <key>` key (None: no header).

    Fallthrough for any other form, and for a token sent beside a session cookie: the view
    reads that session too (and may flush it), which the route does not follow.
    """
    value = headers.get("authorization")
    if value is None:
        return None
    parts = value.split()
    if len(parts) != 2 or parts[0].lower() not in ("token", "bearer") or cookie is not None:
        raise Fallthrough
    return hash_token(parts[1])


def _token_is_current(facts: TileFacts) -> bool:
    """`user_for_token_key` would accept the token and not write its last use (it writes at most every few minutes)."""
    if not facts.token_found or not facts.user_is_active or facts.token_last_used_at is None:
        return False
    now = timezone.now()
    expired = facts.token_expires_at is not None and facts.token_expires_at <= now
    return not expired and now - facts.token_last_used_at <= LAST_USED_RESOLUTION


def _verified(facts: TileFacts, session_hash: str) -> bool:
    """get_user's check: the session's hash matches the current password's (no fallback keys)."""
    if not facts.user_found or not facts.user_is_active:
        return False
    return constant_time_compare(session_hash, User(password=facts.user_password).get_session_auth_hash())


def _response(status: int, content_type: str, body: bytes, headers: list[tuple[str, str]]) -> tuple:
    all_headers = [("Content-Type", content_type), *headers, ("Content-Length", str(len(body)))]
    return status, [(name.lower().encode(), value.encode("latin-1")) for name, value in all_headers], body


async def warm_tile_answer(scope: Scope) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
    """(status, headers, body) when the route can answer exactly as the tile view; else None."""
    match = TILE_PATH.fullmatch(scope["path"])
    if scope["method"] != "GET" or match is None or scope.get("root_path"):
        return NOT_ANSWERED
    layer_id, z, x, y = UUID(match[1]), int(match[2]), int(match[3]), int(match[4])
    headers = _headers(scope)
    is_secure = _is_secure(scope, headers)
    if not tile_in_range(z, x, y) or (settings.SECURE_SSL_REDIRECT and not is_secure):
        return NOT_ANSWERED
    _check_host(headers)
    query = _query(scope)
    cookie = _session_cookie(headers)
    token_hash = _api_token_hash(headers, cookie)
    guessed_key = _guessed_key(layer_id, query, z, x, y)
    session, prefetched = await aio.cache_get_many([cookie and SESSION_CACHE_PREFIX + cookie, guessed_key])
    user_id, session_hash = _session_user(cookie, session)
    facts = await tile_facts(layer_id, user_id, token_hash)
    if facts is None:
        return NOT_ANSWERED
    _remember(facts.layer)
    if token_hash is not None:
        if not _token_is_current(facts):
            return NOT_ANSWERED  # Django records its use, or judges the request without it
        user_id = facts.user_id
    elif user_id is not None and not _verified(facts, session_hash):
        return NOT_ANSWERED  # Django flushes the session or treats the user as nobody
    if not facts.may_view(facts.actor(user_id, query.get("share_token"))):
        return NOT_ANSWERED  # Django's 404
    try:
        conditions = parse_filters(query, facts.layer.attribute_schema)
    except ApplicationError:
        return NOT_ANSWERED  # Django's 400 naming the filter
    key = tile_key(facts.layer, conditions, z, x, y)
    etag = etag_for(key)
    control = tile_cache_control(
        is_public=facts.is_public, data_version=facts.layer.data_version, requested_version=query.get("v")
    )
    view_headers = tile_headers(etag=etag, cache_control=control)
    if token_hash is None:  # SessionMiddleware: the view read the session (a valid token spares it that)
        view_headers["Vary"] += ", Cookie"
    response_headers = [*view_headers.items(), *middleware_headers(is_secure=is_secure)]
    if etag in headers.get("if-none-match", ""):
        return _response(304, HTML_TYPE, b"", response_headers)
    if "gzip" not in headers.get("accept-encoding", ""):
        return NOT_ANSWERED  # rare: Django decompresses
    gzipped = prefetched if key == guessed_key else await aio.cache_get(key)
    if gzipped is None:
        return NOT_ANSWERED
    if not gzipped:
        return _response(204, HTML_TYPE, b"", response_headers)
    return _response(200, MVT_CONTENT_TYPE, gzipped, [("Content-Encoding", "gzip"), *response_headers])


def warm_tile_route(django_app: ASGIApp) -> ASGIApp:
    """`django_app` behind the warm-tile route."""

    async def application(scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http":
            try:
                answer = await warm_tile_answer(scope)
            except Fallthrough:
                answer = NOT_ANSWERED
            except Exception:  # Django answers (and reports) whatever went wrong here
                logger.warning("warm tile route fell through on an error", exc_info=True)
                answer = NOT_ANSWERED
            if answer is not None:
                status, headers, body = answer
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await django_app(scope, receive, send)

    return application
