"""Presence, cursors and selections: shared live, never persisted, rate-limited."""

from __future__ import annotations

import asyncio

import pytest

from apps.collaboration.presence import PresenceStore, presence_redis
from apps.collaboration.tests.conftest import open_socket, run
from apps.maps.models import Grant
from apps.workspaces.models import Role
from tests.factories import CollaboratorFactory, MapFactory, MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def team():
    map = MapFactory()
    editor = MembershipFactory(workspace=map.workspace, role=Role.EDITOR).user
    guest = CollaboratorFactory(map=map, permission=Grant.COMMENT).user
    return map, editor, guest


def test_joiners_see_who_is_here_and_everyone_hears_joins_and_leaves(team) -> None:
    map, editor, guest = team

    async def scenario() -> None:
        first, _ = await open_socket(map.pk, user=editor)
        second, state = await open_socket(map.pk, user=guest)
        by_user = {m["user_id"]: m for m in state["members"]}
        assert set(by_user) == {editor.pk, guest.pk}
        assert (by_user[editor.pk]["role"], by_user[editor.pk]["grant"]) == ("editor", None)
        assert (by_user[guest.pk]["role"], by_user[guest.pk]["grant"]) == (None, "comment")

        joined = await first.expect("presence.join")
        assert joined["member"]["user_id"] == guest.pk
        assert joined["member"]["name"] == guest.display_name
        assert joined["member"]["colour"] == state["you"]["colour"]
        # Not told of its own join. (The first's join may still be in flight to this process and
        # arrive: a join of a member it already knows, which the protocol says to apply as an update.)
        heard = [m["member"]["connection_id"] for m in await second.drain() if m["type"] == "presence.join"]
        assert state["connection_id"] not in heard

        await second.disconnect()
        left = await first.expect("presence.leave")
        assert left == {"type": "presence.leave", "connection_id": state["connection_id"], "user_id": guest.pk}
        await first.disconnect()

    run(scenario)


def test_a_connection_that_drops_without_goodbye_leaves_presence_within_the_ttl(team, fast_presence) -> None:
    map, editor, guest = team

    async def scenario() -> None:
        watcher, _ = await open_socket(map.pk, user=editor)
        dropped, state = await open_socket(map.pk, user=guest)
        await watcher.expect("presence.join")
        dropped.communicator.future.cancel()  # the process dies: no disconnect, no cleanup
        left = await watcher.expect("presence.leave", timeout=3)
        assert left["connection_id"] == state["connection_id"]
        store = PresenceStore(presence_redis(), str(map.pk))
        assert [m.user_id for m in await store.members()] == [editor.pk]
        await store.redis.aclose()
        await watcher.disconnect()

    run(scenario)


def _positions(messages: list[dict]) -> list[dict]:
    """The cursor positions in the `cursors` frames among `messages`."""
    return [cursor for message in messages if message["type"] == "cursors" for cursor in message["cursors"]]


def test_cursors_reach_the_others_but_not_the_sender(team) -> None:
    map, editor, guest = team

    async def scenario() -> None:
        sender, state = await open_socket(map.pk, user=editor)
        other, _ = await open_socket(map.pk, user=guest)
        await sender.expect("presence.join")
        await sender.send(type="cursor", lng=24.94, lat=60.17)
        frame = await other.expect("cursors")
        assert frame == {
            "type": "cursors",
            "cursors": [{"connection_id": state["connection_id"], "user_id": editor.pk, "lng": 24.94, "lat": 60.17}],
        }
        assert _positions(await sender.drain()) == []
        await sender.disconnect()
        await other.disconnect()

    run(scenario)


def test_cursors_moved_together_arrive_to_each_connection_without_its_own(team) -> None:
    map, editor, guest = team
    viewer = MembershipFactory(workspace=map.workspace, role=Role.VIEWER).user

    async def scenario() -> None:
        sockets = [await open_socket(map.pk, user=user) for user in (editor, guest, viewer)]
        ids = [state["connection_id"] for _, state in sockets]
        for index, (socket, _) in enumerate(sockets):
            await socket.send(type="cursor", lng=10.0 + index, lat=50.0)
        for index, (socket, _) in enumerate(sockets):
            seen = {cursor["connection_id"]: cursor["lng"] for cursor in _positions(await socket.drain())}
            others = {ids[i]: 10.0 + i for i in range(3) if i != index}
            assert seen == others
        for socket, _ in sockets:
            await socket.disconnect()

    run(scenario)


def test_cursor_floods_are_dropped_beyond_twenty_a_second_and_coalesced(team) -> None:
    map, editor, guest = team

    async def scenario() -> None:
        sender, _ = await open_socket(map.pk, user=editor)
        other, _ = await open_socket(map.pk, user=guest)
        for i in range(100):
            await sender.send(type="cursor", lng=24.0 + i / 1000, lat=60.0)
        received = _positions(await other.drain(timeout=0.6))
        # The burst of 20 passes the limit (plus what refills meanwhile) and the rest is dropped, not
        # queued; of what passes, the server relays only each connection's newest position per window.
        assert 1 <= len(received) <= 3
        assert all(24.0 <= m["lng"] < 24.035 for m in received), received
        assert [m for m in await sender.drain(timeout=0.1) if m["type"] == "error"] == []  # dropped silently
        await asyncio.sleep(0.2)
        await sender.send(type="cursor", lng=25.0, lat=61.0)
        assert (await other.expect("cursors"))["cursors"][0]["lng"] == 25.0  # the limit refills
        await sender.disconnect()
        await other.disconnect()

    run(scenario)


def test_a_selection_reaches_the_others_and_late_joiners_see_it(team) -> None:
    map, editor, guest = team
    viewer = MembershipFactory(workspace=map.workspace, role=Role.VIEWER).user

    async def scenario() -> None:
        selecting, state = await open_socket(map.pk, user=editor)
        other, _ = await open_socket(map.pk, user=guest)
        await selecting.send(type="selection", feature_ids=[7, 3, 7])
        changed = await other.expect("selection")
        assert changed["feature_ids"] == [7, 3]
        assert changed["connection_id"] == state["connection_id"]
        late, late_state = await open_socket(map.pk, user=viewer)
        selections = {m["user_id"]: m["selection"] for m in late_state["members"]}
        assert selections == {editor.pk: [7, 3], guest.pk: [], viewer.pk: []}
        for socket in (selecting, other, late):
            await socket.disconnect()

    run(scenario)
