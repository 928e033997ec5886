"""Drive ASGI apps in tests as a server would: the warm-tile route in front of Django, or Django alone."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from django.core.handlers.asgi import ASGIHandler
from django.test import Client

from apps.accounts.models import User
from apps.tiles import aio
from apps.tiles.route import warm_tile_route
from config.asgi import django_asgi_app


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    by_django: bool = False


@dataclass
class RecordingDjango:
    """Django's ASGI app, counting the requests that reached it."""

    calls: list[str] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.calls.append(scope["path"])
        await django_asgi_app(scope, receive, send)


async def _call(app: Any, path: str, headers: dict[str, str]) -> Answer:
    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in {"host": "testserver", **headers}.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Future()  # the client never disconnects
        raise AssertionError

    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    try:
        await app(scope, receive, send)
    finally:
        await aio.close_for_loop()
    start = messages[0]
    headers_out = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in messages[1:])
    return Answer(start["status"], headers_out, body)


def through_route(path: str, headers: dict[str, str]) -> Answer:
    django = RecordingDjango()
    answer = asyncio.run(_call(warm_tile_route(django), path, headers))
    answer.by_django = bool(django.calls)
    return answer


def through_django(path: str, headers: dict[str, str], *, fresh: bool = False) -> Answer:
    """`fresh`: a new handler, whose middleware reads the settings as they are now (a test changed them)."""
    return asyncio.run(_call(ASGIHandler() if fresh else django_asgi_app, path, headers))


def session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"
