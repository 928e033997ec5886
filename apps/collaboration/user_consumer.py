"""The signed-in person's own socket, `/ws/me/`: their job progress on pages without a map.

Every signed-in map socket also joins the user group, so a map page needs no
second socket; this one serves the dashboard and the import page. It only
listens: clients send nothing (any frame is answered with an error), and the
group carries nothing but the user's own messages.
"""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth.models import AnonymousUser

from apps.accounts.models import User
from apps.collaboration.broadcast import user_group
from apps.collaboration.protocol import CloseCode, Error, ErrorCode, Ready, out


class UserConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.user: User | AnonymousUser = self.scope.get("user") or AnonymousUser()
        self.group: str | None = None
        # Accept first so the refusal carries a close code the client can read.
        await self.accept()
        if self.scope.get("auth_error") or not self.user.is_authenticated:
            await self.close(code=CloseCode.UNAUTHENTICATED)
            return
        self.group = user_group(self.user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.send_json(out(Ready(user_id=self.user.pk)))

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send_json(out(Error(code=ErrorCode.UNKNOWN_TYPE, message="This socket only listens.")))

    async def job_progress(self, event: dict[str, Any]) -> None:
        await self.send_json(event["message"])

    async def access_changed(self, event: dict[str, Any]) -> None:
        """Meant for map sockets (which re-check their map); nothing here depends on map access."""
