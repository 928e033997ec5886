"""Websocket authentication and origin checks.

Browsers authenticate by session cookie, scripts by `Authorization: Token <key>`.
A browser always sends `Origin` on a websocket handshake and cannot set an
`Authorization` header, so:

- with an `Origin`, it must name one of `ALLOWED_HOSTS`, whatever else is sent
  (a page on another site must not ride the user's cookie: cross-site websocket hijacking);
- without one, the client is a script: only a token may authenticate it, and any
  cookie it sent is dropped before the session is read.

A token that names no active API token is refused (close code 4401) rather than
quietly downgraded to the cookie's user or to anonymous.
"""

from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import AllowedHostsOriginValidator

from apps.accounts.authentication import user_for_token_key

INVALID_TOKEN = "invalid_token"  # noqa: S105 (a marker in the scope, not a secret)


def _header(scope: dict[str, Any], wanted: bytes) -> bytes | None:
    return next((value for name, value in scope.get("headers", []) if name == wanted), None)


def _token_from_scope(scope: dict[str, Any]) -> str | None:
    value = _header(scope, b"authorization")
    if value is None:
        return None
    parts = value.decode(errors="replace").split()
    if len(parts) == 2 and parts[0].lower() in ("token", "bearer"):
        return parts[1]
    return None


class TokenAuthMiddleware(BaseMiddleware):
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        key = _token_from_scope(scope)
        if key:
            found = await database_sync_to_async(user_for_token_key)(key)
            scope = dict(scope, auth_error=INVALID_TOKEN) if found is None else dict(scope, user=found[0])
        return await super().__call__(scope, receive, send)


class OriginOrTokenValidator:
    """Origin validation for cookie clients; scripts without an Origin must bring a token (see the module doc)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.origin_checked = AllowedHostsOriginValidator(inner)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if _header(scope, b"origin") is None and _token_from_scope(scope) is not None:
            headers = [(name, value) for name, value in scope["headers"] if name != b"cookie"]
            return await self.inner(dict(scope, headers=headers), receive, send)
        return await self.origin_checked(scope, receive, send)


def TokenOrSessionAuthMiddlewareStack(inner: Any) -> Any:  # noqa: N802 (Channels' naming)
    return AuthMiddlewareStack(TokenAuthMiddleware(inner))


def socket_application(routes: Any) -> Any:
    """The websocket side of the ASGI app: origin or token first, then who is asking, then the route."""
    return OriginOrTokenValidator(TokenOrSessionAuthMiddlewareStack(routes))
