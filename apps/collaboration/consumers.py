"""The map socket, `/ws/maps/<map_uuid>/` (DESIGN §7; the protocol is docs/PROTOCOL.md).

An adapter like a REST view: the middleware authenticates, `apps.maps.permissions`
decides (through the selectors), `protocol.py` validates every frame, and writes
go through the same services REST calls (`writes.py`, one transaction each). No ORM here.

Channel groups: every connection joins its map's group; a signed-in one also
joins its user's group (`access.changed`, and `job.progress` for the user's own
jobs, which then skips the map group's copy).

Concurrency: Channels hands one consumer its websocket frames and channel-layer
messages one at a time, so a handler never races another handler of the same
connection. Only the presence heartbeat runs beside them, and it touches
nothing but Redis (the seq-gap timer only posts a message to our own channel).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth.models import AnonymousUser

from apps.accounts.models import User
from apps.collaboration import presence
from apps.collaboration.auth import INVALID_TOKEN
from apps.collaboration.broadcast import event_message, map_group, user_group
from apps.collaboration.cursors import TokenBucket, cursor_batcher, cursors_frame
from apps.collaboration.dispatch import AsyncOnlyDispatchMixin
from apps.collaboration.protocol import (
    CloseCode,
    Cursor,
    CursorPosition,
    Error,
    ErrorCode,
    Hello,
    Permissions,
    PresenceJoin,
    PresenceLeave,
    PresenceMember,
    PresenceState,
    ProtocolError,
    Resync,
    Selection,
    SelectionChanged,
    Synced,
    WriteMessage,
    out,
    parse_client_message,
)
from apps.collaboration.selectors import SocketAdmission, map_last_seq, map_replay, socket_admission
from apps.collaboration.writes import write_reply

logger = logging.getLogger(__name__)

# A reconnecting client further behind than this reloads the map instead of replaying.
REPLAY_LIMIT = 1000
# Cursors and selections: excess is dropped, never queued (a stale cursor is worthless).
EPHEMERAL_RATE, EPHEMERAL_BURST = 20.0, 20
# How long an event that arrived ahead of a gap in seq waits for the missing one (whose publish it
# overtook) before the gap is filled from the log: bursts of edits from two server processes did
# this for most events, and 50 sockets reading the log at once held up every socket's delivery.
GAP_WAIT_SECONDS = 0.2
# Writes: excess is refused with `rate_limited`, since every write is owed an answer.
WRITE_RATE, WRITE_BURST = 10.0, 20


# --- the consumer ----------------------------------------------------------------------------


def _share_token(scope: dict[str, Any]) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode(errors="replace")).get("share")
    return values[0] if values else None


class MapConsumer(AsyncOnlyDispatchMixin, AsyncJsonWebsocketConsumer):
    """One open map in one browser tab (or one script). No ORM outside `database_sync_to_async` (see the mixin)."""

    async def connect(self) -> None:
        self.connection_id = secrets.token_hex(8)
        self.map_id = str(self.scope["url_route"]["kwargs"]["map_id"])
        self.user: User | AnonymousUser = self.scope.get("user") or AnonymousUser()
        self.share_token = _share_token(self.scope)
        self.closed = False
        self.synced = False  # no events until the client's hello says where it stands
        self.delivered_seq = 0
        self.held_events: dict[int, str] = {}  # event frames (JSON text) that arrived ahead of a gap in seq
        self.gap_check: asyncio.Task[None] | None = None
        self.joined_groups: list[str] = []
        self.member: PresenceMember | None = None
        self.store: presence.PresenceStore | None = None
        self.heartbeat: asyncio.Task[None] | None = None
        self.ephemeral = TokenBucket(EPHEMERAL_RATE, EPHEMERAL_BURST)
        self.writes = TokenBucket(WRITE_RATE, WRITE_BURST)
        # Accept first so a refusal carries a close code the client can read (a refused handshake cannot).
        await self.accept()
        if self.scope.get("auth_error") == INVALID_TOKEN:
            await self._close(CloseCode.UNAUTHENTICATED)
            return
        admission = await database_sync_to_async(socket_admission)(self.user, self.map_id, share_token=self.share_token)
        if admission is None:
            await self._close(CloseCode.NOT_FOUND)
            return
        self.admission = admission
        await self._join()

    async def _join(self) -> None:
        groups = [map_group(self.map_id)]
        if self.user.is_authenticated:
            groups.append(user_group(self.user.pk))
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
            self.joined_groups.append(group)
        self.store = presence.PresenceStore(presence.presence_redis(), self.map_id)
        if self.user.is_authenticated:
            self.member = self._member_from(self.admission)
            await self.store.save(self.member)
            await self._group_send("presence.join", PresenceJoin(member=self.member))
        state = PresenceState(
            connection_id=self.connection_id,
            you=self.member,
            members=await self.store.members(),
            permissions=sorted(self.admission.actions),
            last_seq=self.admission.map.last_event_seq,
        )
        await self.send_json(out(state))
        consumer_task = asyncio.current_task()
        assert consumer_task is not None
        self.consumer_task = consumer_task
        self.heartbeat = asyncio.create_task(self._beat())

    def _member_from(self, admission: SocketAdmission) -> PresenceMember:
        user = self.user
        assert isinstance(user, User)
        return PresenceMember(
            connection_id=self.connection_id,
            user_id=user.pk,
            name=user.display_name,
            colour=presence.colour_for(user.pk),
            role=admission.actor.role_in(admission.map.workspace_id),
            grant=admission.actor.grants.get(admission.map.pk),
            selection=self.member.selection if self.member else [],
        )

    async def _beat(self) -> None:
        """Keep our presence alive, re-join if we were swept, and sweep those who vanished."""
        assert self.store is not None
        while True:
            await asyncio.sleep(presence.HEARTBEAT_SECONDS)
            if self.consumer_task.done():  # torn down without a disconnect: fall silent, let others sweep us
                await self.store.redis.aclose()
                return
            try:
                if self.member is not None and not await self.store.touch(self.connection_id):
                    await self.store.save(self.member)
                    await self._group_send("presence.join", PresenceJoin(member=self.member))
                for gone in await self.store.sweep():  # someone else's departure: everyone hears it
                    await self._group_send("presence.leave", PresenceLeave(**gone), to_self=True)
            except Exception:  # Redis hiccup: the next beat tries again
                logger.exception("presence heartbeat failed on map %s", self.map_id)

    async def disconnect(self, code: int) -> None:
        await self._leave()

    async def _leave(self) -> None:
        """Idempotent: runs on disconnect and before closing a socket ourselves."""
        if self.heartbeat is not None:
            self.heartbeat.cancel()
            self.heartbeat = None
        if self.gap_check is not None:
            self.gap_check.cancel()
            self.gap_check = None
        for group in self.joined_groups:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.joined_groups = []
        if self.store is not None:
            if self.member is not None and await self.store.leave(self.connection_id):
                leave = PresenceLeave(connection_id=self.connection_id, user_id=self.member.user_id)
                await self._group_send("presence.leave", leave)
            await self.store.redis.aclose()
            self.store = None

    async def _close(self, code: int) -> None:
        if self.closed:
            return
        await self._leave()
        self.closed = True
        await self.close(code=code)

    async def send_json(self, content: Any, close: bool = False) -> None:
        if not self.closed:
            await super().send_json(content, close=close)

    async def _group_send(self, kind: str, message: Any, *, to_self: bool = False) -> None:
        """To every connection on the map, this one included only when `to_self`."""
        sender = None if to_self else self.connection_id
        await self.channel_layer.group_send(
            map_group(self.map_id), {"type": kind, "message": out(message), "sender": sender}
        )

    # --- client → server ----------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closed:
            return
        if text_data is None:
            await self._error(ErrorCode.BINARY_UNSUPPORTED, "Send JSON in text frames.")
            return
        try:
            await self._dispatch(parse_client_message(text_data))
        except ProtocolError as exc:
            await self._error(exc.code, exc.message, client_msg_id=exc.client_msg_id, details=exc.details)
        except Exception:
            logger.exception("map socket message failed on map %s", self.map_id)
            await self._error(ErrorCode.INTERNAL, "Something went wrong; the message was not applied.")

    async def _dispatch(self, message: Any) -> None:
        match message:
            case Hello():
                await self._hello(message)
            case Cursor():
                await self._cursor(message)
            case Selection():
                await self._selection(message)
            case _:
                await self._write(message)

    async def _error(self, code: str, text: str, **fields: Any) -> None:
        await self.send_json(out(Error(code=code, message=text, **fields)))

    async def _hello(self, message: Hello) -> None:
        if message.last_seq is None:
            self.delivered_seq = await database_sync_to_async(map_last_seq)(self.admission.map)
        else:
            await self._replay(after=message.last_seq)
        self.synced = True
        await self.send_json(out(Synced(last_seq=self.delivered_seq)))

    async def _replay(self, *, after: int) -> None:
        """Send the logged events after `after`, or `resync` when too many were missed."""
        replay = await database_sync_to_async(map_replay)(self.admission.map, after=after, limit=REPLAY_LIMIT)
        if not replay.complete:
            self.delivered_seq = replay.last_seq
            await self.send_json(
                out(Resync(last_seq=replay.last_seq, reason="Too far behind the log: reload the map."))
            )
            return
        for event in replay.events:
            await self.send_json(event_message(event))
        self.delivered_seq = max([after, *(event.seq for event in replay.events)])

    async def _cursor(self, message: Cursor) -> None:
        if self.member is None:
            await self._error(ErrorCode.FORBIDDEN, "Sign in to share your cursor.")
            return
        if not self.ephemeral.take():
            return
        position = CursorPosition(
            connection_id=self.connection_id, user_id=self.member.user_id, lng=message.lng, lat=message.lat
        )
        cursor_batcher(self.channel_layer, map_group(self.map_id)).add(position)

    async def _selection(self, message: Selection) -> None:
        if self.member is None or self.store is None:
            await self._error(ErrorCode.FORBIDDEN, "Sign in to share your selection.")
            return
        if not self.ephemeral.take():
            return
        ids = list(dict.fromkeys(message.feature_ids))
        self.member = self.member.model_copy(update={"selection": ids})
        await self.store.save(self.member)
        changed = SelectionChanged(connection_id=self.connection_id, user_id=self.member.user_id, feature_ids=ids)
        await self._group_send("selection.changed", changed)

    async def _write(self, message: WriteMessage) -> None:
        if not self.user.is_authenticated:
            await self._error(ErrorCode.FORBIDDEN, "Sign in to change the map.", client_msg_id=message.client_msg_id)
            return
        if not self.writes.take():
            await self._error(
                ErrorCode.RATE_LIMITED, "Too many changes; slow down.", client_msg_id=message.client_msg_id
            )
            return
        # In the thread pool, not the process's one sync thread: a write (~15 queries) there held up
        # every other socket's writes and replays. The map row lock still orders seq; overtaken
        # broadcasts are put back in order by `map_event`.
        reply = await database_sync_to_async(write_reply, thread_sensitive=False)(self.user, self.map_id, message)
        await self.send_json(reply)

    # --- channel layer → client -----------------------------------------------------------

    async def map_event(self, event: dict[str, Any]) -> None:
        """Deliver exactly once and in seq order.

        Events commit in seq order but are published after their commits from different
        threads and processes, so one can overtake another: an event after a gap is held
        until the missing one arrives, or for GAP_WAIT_SECONDS, after which the log fills
        the gap (a publish can fail; the event is in the log all the same).
        """
        if not self.synced or self.closed:
            return
        seq = int(event["seq"])
        if seq <= self.delivered_seq:
            return  # already delivered, by a replay
        self.held_events[seq] = event["text"]
        await self._deliver_held()
        if self.held_events and self.gap_check is None:
            self.gap_check = asyncio.create_task(self._check_gap_later())

    async def _deliver_held(self) -> None:
        while (text := self.held_events.pop(self.delivered_seq + 1, None)) is not None:
            if not self.closed:
                await self.send(text_data=text)
            self.delivered_seq += 1

    async def _check_gap_later(self) -> None:
        """Through our own channel, so the check runs in turn with every other handler, not beside them."""
        await asyncio.sleep(GAP_WAIT_SECONDS)
        await self.channel_layer.send(self.channel_name, {"type": "events.gap"})

    async def events_gap(self, event: dict[str, Any]) -> None:
        """The wait is over: whatever is still missing comes from the log."""
        self.gap_check = None
        if self.closed or not self.held_events:
            return
        await self._replay(after=self.delivered_seq)
        self.held_events = {seq: held for seq, held in self.held_events.items() if seq > self.delivered_seq}
        await self._deliver_held()
        if self.held_events:
            self.gap_check = asyncio.create_task(self._check_gap_later())

    async def _relay(self, event: dict[str, Any]) -> None:
        if event.get("sender") != self.connection_id:
            await self.send_json(event["message"])

    async def presence_join(self, event: dict[str, Any]) -> None:
        await self._relay(event)

    async def presence_leave(self, event: dict[str, Any]) -> None:
        await self._relay(event)

    async def cursor_batch(self, event: dict[str, Any]) -> None:
        """Cursors coalesced by one server process: one `cursors` frame, never with one's own cursor."""
        frame = cursors_frame(event["cursors"], recipient=self.connection_id)
        if frame is not None and not self.closed:
            await self.send(text_data=frame)

    async def selection_changed(self, event: dict[str, Any]) -> None:
        await self._relay(event)

    async def job_progress(self, event: dict[str, Any]) -> None:
        """A job's state. The owner hears of it through their user group, so the map's copy skips them."""
        if self.closed or (event.get("owner") is not None and event.get("owner") == self.user.pk):
            return
        await self.send_json(event["message"])

    async def access_changed(self, event: dict[str, Any]) -> None:
        """Someone changed who may see this map (or what this user may do): re-check, close if access is gone."""
        if self.closed or event.get("map_id") not in (None, "None", self.map_id):
            return
        admission = await database_sync_to_async(socket_admission)(self.user, self.map_id, share_token=self.share_token)
        if admission is None:
            await self._close(CloseCode.ACCESS_REVOKED)
            return
        previous, self.admission = self.admission, admission
        if admission.actions != previous.actions:
            await self.send_json(out(Permissions(permissions=sorted(admission.actions))))
        if self.member is not None and self.store is not None:
            member = self._member_from(admission)
            if member != self.member:
                self.member = member
                await self.store.save(member)
                await self._group_send("presence.join", PresenceJoin(member=member))
