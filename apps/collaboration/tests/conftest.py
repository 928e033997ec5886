"""Harness for the map socket tests: the full ASGI stack (origin check, cookie and token auth)
over the real Redis channel layer, driven from sync tests with `async_to_sync`.

Each test runs one `async def scenario()` through `run(...)`, because a
communicator's application task lives in the event loop that started it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from django.conf import settings
from django.test import Client

from apps.accounts.models import ApiToken, User, hash_token
from config.asgi import application

ORIGIN = b"http://testserver"


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async_to_sync(scenario)()


def session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def api_token(user: User) -> str:
    key = ApiToken.generate_key()
    ApiToken.objects.create(user=user, name="socket test", key_hash=hash_token(key), key_prefix=key[:12])
    return key


class WebsocketCommunicator(ApplicationCommunicator):
    """`channels.testing.WebsocketCommunicator`, minus its import of daphne (not installed: we serve with uvicorn).

    `import channels.testing` pulls in `ChannelsLiveServerTestCase`, which needs daphne;
    this is the same scope and handshake on asgiref's communicator.
    """

    def __init__(self, app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> None:
        parsed = urlparse(path)
        scope = {
            "type": "websocket",
            "path": unquote(parsed.path),
            "query_string": parsed.query.encode(),
            "headers": headers,
            "subprotocols": [],
        }
        super().__init__(app, scope)

    async def connect(self, timeout: float = 5) -> tuple[bool, int | None]:
        await self.send_input({"type": "websocket.connect"})
        response = await self.receive_output(timeout)
        if response["type"] == "websocket.close":
            return False, response.get("code", 1000)
        assert response["type"] == "websocket.accept"
        return True, None

    async def send_to(self, *, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is not None:
            await self.send_input({"type": "websocket.receive", "text": text_data})
        else:
            await self.send_input({"type": "websocket.receive", "bytes": bytes_data})

    async def disconnect(self, code: int = 1000, timeout: float = 0.5) -> None:
        """Our `disconnect()` runs at once; the short wait lets the consumer's cancelled
        channel-layer receive unsubscribe before the task ends."""
        await self.send_input({"type": "websocket.disconnect", "code": code})
        await self.wait(timeout)


class Socket:
    """A test client for one connection; reads never cancel the application (unlike `receive_output`)."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator
        self.close_code: int | None = None

    async def send(self, **message: Any) -> None:
        await self.communicator.send_to(text_data=json.dumps(message))

    async def send_text(self, text: str) -> None:
        await self.communicator.send_to(text_data=text)

    async def _next(self, timeout: float) -> dict[str, Any] | None:
        if self.communicator.future.done():
            self.communicator.future.result()
        async with asyncio.timeout(timeout):
            output = await self.communicator.output_queue.get()
        if output["type"] == "websocket.close":
            self.close_code = output.get("code", 1000)
            return None
        return json.loads(output["text"])

    async def expect(self, type: str, *, timeout: float = 3.0, **fields: Any) -> dict[str, Any]:
        """The next message of `type` (with these field values), skipping others."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self._next(timeout)
                assert message is not None, f"closed with {self.close_code} while waiting for {type}"
                if message["type"] == type and all(message.get(k) == v for k, v in fields.items()):
                    return message

    async def drain(self, timeout: float = 0.4) -> list[dict[str, Any]]:
        """Everything that arrives until the socket is quiet for `timeout` seconds."""
        received = []
        while True:
            try:
                message = await self._next(timeout)
            except TimeoutError:
                return received
            if message is None:
                return received
            received.append(message)

    async def closed(self, *, timeout: float = 3.0) -> int:
        async with asyncio.timeout(timeout):
            while self.close_code is None:
                await self._next(timeout)
        return self.close_code

    async def hello(self, last_seq: int | None = None) -> dict[str, Any]:
        await self.send(type="hello", last_seq=last_seq)
        return await self.expect("synced")

    async def disconnect(self) -> None:
        await self.communicator.disconnect()


async def open_socket(
    map_id: object,
    *,
    user: User | None = None,
    token: str | None = None,
    origin: bytes | None = ORIGIN,
    query: str = "",
) -> tuple[Socket, dict[str, Any]]:
    """Connect as `user` (session cookie), or with an API token, or anonymously; returns the first message."""
    path = f"/ws/maps/{map_id}/" + (f"?{query}" if query else "")
    return await open_path(path, user=user, token=token, origin=origin)


async def open_path(
    path: str, *, user: User | None = None, token: str | None = None, origin: bytes | None = ORIGIN
) -> tuple[Socket, dict[str, Any]]:
    headers = [(b"host", b"testserver")]
    if origin is not None:
        headers.append((b"origin", origin))
    if user is not None:
        headers.append((b"cookie", (await database_sync_to_async(session_cookie)(user)).encode()))
    if token is not None:
        headers.append((b"authorization", f"Token {token}".encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect()
    socket = Socket(communicator)
    if not connected:
        socket.close_code = code
        return socket, {}
    first = await socket._next(5)
    return socket, first or {}


@pytest.fixture(autouse=True)
def _channel_layer_per_test() -> Iterator[None]:
    """A fresh Redis channel layer for each test's event loop.

    A server has one loop for its life, but each test runs in a new one; the
    cached layer would keep connections (and their locks) bound to loops that are gone.
    """
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
def fast_presence(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seconds-long presence timings shrunk so a dropped connection is swept within a test."""
    from apps.collaboration import presence

    monkeypatch.setattr(presence, "HEARTBEAT_SECONDS", 0.1)
    monkeypatch.setattr(presence, "TTL_SECONDS", 0.5)
