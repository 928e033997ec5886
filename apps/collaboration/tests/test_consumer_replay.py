"""Replay: a reconnecting client gets exactly the events it missed, in order, or `resync` past the bound."""

from __future__ import annotations

from contextlib import nullcontext
from unittest import mock

import pytest
from channels.db import database_sync_to_async
from django.db import transaction

from apps.collaboration import consumers
from apps.collaboration.broadcast import publish_map_event
from apps.collaboration.models import MapEvent
from apps.collaboration.services import map_event_append
from apps.collaboration.tests.conftest import Socket, open_socket, run
from apps.maps.models import Map
from apps.workspaces.models import Role
from tests.factories import MapFactory, MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _append(map: Map, count: int, *, publish: bool = True) -> list[MapEvent]:
    """Log `count` events on the map, as a service would (broadcast on commit unless `publish` is off)."""
    silenced = mock.patch("apps.collaboration.broadcast.publish_map_event") if not publish else nullcontext()
    with silenced, transaction.atomic():
        return [
            map_event_append(
                workspace_id=map.workspace_id, map_id=map.pk, type="map.updated", payload={"n": i}, actor_id=None
            )
            for i in range(count)
        ]


async def _events(socket: Socket) -> list[int]:
    return [m["seq"] for m in await socket.drain() if m["type"] == "event"]


@pytest.fixture
def watched():
    map = MapFactory()
    member = MembershipFactory(workspace=map.workspace, role=Role.VIEWER).user
    return map, member


def test_a_reconnecting_client_gets_exactly_what_it_missed_in_order_then_live_events(watched) -> None:
    map, member = watched
    append = database_sync_to_async(_append)

    async def scenario() -> None:
        socket, _ = await open_socket(map.pk, user=member)
        await socket.hello(0)
        await append(map, 3)
        assert await _events(socket) == [1, 2, 3]
        await socket.disconnect()

        await append(map, 4)  # seq 4..7 while away

        socket, state = await open_socket(map.pk, user=member)
        assert state["last_seq"] == 7
        await socket.send(type="hello", last_seq=3)
        received = await socket.drain()
        assert [m["seq"] for m in received if m["type"] == "event"] == [4, 5, 6, 7]
        assert received[-1] == {"type": "synced", "last_seq": 7}
        assert [m["payload"]["n"] for m in received if m["type"] == "event"] == [0, 1, 2, 3]
        await append(map, 2)
        assert await _events(socket) == [8, 9]  # live, no duplicates of the replayed ones
        await socket.disconnect()

    run(scenario)


def test_no_events_are_sent_before_hello_and_hello_without_seq_starts_from_now(watched) -> None:
    map, member = watched
    append = database_sync_to_async(_append)

    async def scenario() -> None:
        socket, _ = await open_socket(map.pk, user=member)
        await append(map, 2)
        assert await _events(socket) == []
        assert await socket.hello(None) == {"type": "synced", "last_seq": 2}
        await append(map, 1)
        assert await _events(socket) == [3]
        await socket.disconnect()

    run(scenario)


def test_a_client_too_far_behind_is_told_to_resync(watched, monkeypatch: pytest.MonkeyPatch) -> None:
    map, member = watched
    monkeypatch.setattr(consumers, "REPLAY_LIMIT", 3)
    _append(map, 5)

    async def scenario() -> None:
        socket, _ = await open_socket(map.pk, user=member)
        await socket.send(type="hello", last_seq=1)
        received = await socket.drain()
        assert [m["type"] for m in received] == ["resync", "synced"]
        assert received[0]["last_seq"] == 5
        await socket.send(type="hello", last_seq=99)  # ahead of the log (a restored database)
        assert (await socket.expect("resync"))["last_seq"] == 5
        await socket.send(type="hello", last_seq=2)  # exactly at the bound: replayed
        assert await _events(socket) == [3, 4, 5]
        await socket.disconnect()

    run(scenario)


def test_a_broadcast_that_overtakes_an_earlier_one_is_delivered_after_it(watched) -> None:
    map, member = watched

    def log_two_and_publish_only_the_second() -> None:
        events = _append(map, 2, publish=False)
        publish_map_event(events[1])

    async def scenario() -> None:
        socket, _ = await open_socket(map.pk, user=member)
        await socket.hello(0)
        await database_sync_to_async(log_two_and_publish_only_the_second)()
        assert await _events(socket) == [1, 2]  # the gap is filled from the log
        await database_sync_to_async(publish_map_event)(
            await database_sync_to_async(lambda: MapEvent.objects.unscoped().get(map=map, seq=1))()
        )
        assert await _events(socket) == []  # a late duplicate is dropped
        await socket.disconnect()

    run(scenario)


def test_an_overtaken_broadcast_arriving_within_the_wait_is_put_in_order_without_reading_the_log(
    watched, monkeypatch: pytest.MonkeyPatch
) -> None:
    map, member = watched
    log_reads: list[int] = []
    real_replay = consumers.map_replay

    def counted_replay(*args, **kwargs):
        log_reads.append(kwargs["after"])
        return real_replay(*args, **kwargs)

    monkeypatch.setattr(consumers, "map_replay", counted_replay)

    def log_two_and_publish_them_backwards() -> None:
        first, second = _append(map, 2, publish=False)
        publish_map_event(second)
        publish_map_event(first)

    async def scenario() -> None:
        socket, _ = await open_socket(map.pk, user=member)
        await socket.hello(0)
        log_reads.clear()  # the hello's own catch-up
        await database_sync_to_async(log_two_and_publish_them_backwards)()
        assert await _events(socket) == [1, 2]
        assert log_reads == []  # seq 2 waited for seq 1; nobody read the log
        await socket.disconnect()

    run(scenario)
