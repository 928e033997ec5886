"""Layer and map changes over the socket go through the map and layer services: ack, fan-out, replay, refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest

from apps.collaboration.models import MapEvent
from apps.collaboration.tests.conftest import Socket, open_socket, run
from apps.layers.models import Layer
from apps.maps.models import Grant, Map, MapLayer, Visibility
from apps.workspaces.models import Role
from tests.factories import CollaboratorFactory, LayerFactory, MapLayerFactory, MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def board():
    first = MapLayerFactory(display_order=0)
    map = first.map
    second = MapLayerFactory(map=map, display_order=1)
    library = LayerFactory(workspace=map.workspace, is_global=True, name="library")
    editor = MembershipFactory(workspace=map.workspace, role=Role.EDITOR).user
    colleague = MembershipFactory(workspace=map.workspace, role=Role.EDITOR).user
    return map, [first.layer, second.layer], library, editor, colleague


def _placements(map: Map) -> list[tuple[str, int, bool, float]]:
    entries = MapLayer.objects.unscoped().filter(map=map).order_by("display_order")
    return [(str(e.layer_id), e.display_order, e.is_visible, e.opacity) for e in entries]


def _map_row(map: Map) -> Map:
    return Map.objects.unscoped().get(pk=map.pk)


def _style(layer: Layer) -> dict[str, Any]:
    return Layer.objects.unscoped().get(pk=layer.pk).style_config


def _event_types(map: Map) -> list[str]:
    return list(MapEvent.objects.unscoped().filter(map=map).order_by("seq").values_list("type", flat=True))


async def _acked(socket: Socket, client_msg_id: str, **message: Any) -> dict[str, Any]:
    await socket.send(client_msg_id=client_msg_id, **message)
    reply = await socket.expect("ack", client_msg_id=client_msg_id)
    return reply


def test_each_layer_change_is_acked_with_its_seq_and_reaches_the_other_clients_in_order(board) -> None:
    map, (bottom, top), library, editor, colleague = board

    async def scenario() -> None:
        author, _ = await open_socket(map.pk, user=editor)
        other, _ = await open_socket(map.pk, user=colleague)
        await other.hello(0)
        added = await _acked(author, "a", type="layer.add", layer=str(library.pk), opacity=0.5)
        assert (added["seq"], added["layer"]) == (1, str(library.pk))
        shown = await _acked(author, "d", type="layer.display", layer=str(bottom.pk), is_visible=False, opacity=0.3)
        order = [str(top.pk), str(library.pk), str(bottom.pk)]
        reordered = await _acked(author, "r", type="layer.reorder", layers=order)
        styled = await _acked(author, "s", type="layer.style", layer=str(top.pk), style_config={"color": "#ff0000"})
        removed = await _acked(author, "x", type="layer.remove", layer=str(top.pk))
        assert [m["seq"] for m in (shown, reordered, styled, removed)] == [2, 3, 4, 5]
        events = [await other.expect("event") for _ in range(5)]
        assert [(e["seq"], e["event"], e["actor"]) for e in events] == [
            (1, "map.layer_added", editor.pk),
            (2, "map.layer_updated", editor.pk),
            (3, "map.layers_reordered", editor.pk),
            (4, "layer.updated", editor.pk),
            (5, "map.layer_removed", editor.pk),
        ]
        assert events[0]["payload"] == {"layer": str(library.pk), "opacity": 0.5, "display_order": 2}
        assert events[1]["payload"] == {"layer": str(bottom.pk), "is_visible": False, "opacity": 0.3}
        assert events[2]["payload"] == {"layers": order}
        assert events[3]["payload"]["style_config"]["color"] == "#ff0000"  # others restyle without a reload
        await author.disconnect()
        await other.disconnect()

    run(scenario)
    assert _placements(map) == [(str(library.pk), 1, True, 0.5), (str(bottom.pk), 2, False, 0.3)]
    assert _style(top)["color"] == "#ff0000"


def test_map_view_and_settings_are_acked_broadcast_and_stored(board) -> None:
    map, _layers, _library, editor, colleague = board

    async def scenario() -> None:
        author, _ = await open_socket(map.pk, user=editor)
        other, _ = await open_socket(map.pk, user=colleague)
        await other.hello(0)
        view = await _acked(
            author, "v", type="map.view", center={"lng": 24.94, "lat": 60.17}, zoom=12.5, bearing=30, pitch=45
        )
        settings = await _acked(author, "n", type="map.settings", name="Helsinki trams", basemap="none")
        assert (view["seq"], settings["seq"]) == (1, 2)
        moved, renamed = await other.expect("event"), await other.expect("event")
        assert (moved["event"], moved["payload"]["zoom"], moved["payload"]["pitch"]) == ("map.updated", 12.5, 45)
        assert json.loads(moved["payload"]["center"])["coordinates"] == [24.94, 60.17]
        assert renamed["payload"] == {"name": "Helsinki trams", "basemap": "none"}
        await author.disconnect()
        await other.disconnect()

    run(scenario)
    stored = _map_row(map)
    assert (stored.name, stored.basemap, stored.zoom, stored.bearing, stored.pitch) == (
        "Helsinki trams",
        "none",
        12.5,
        30,
        45,
    )
    assert (round(stored.center.x, 2), round(stored.center.y, 2)) == (24.94, 60.17)


def test_a_reconnecting_client_replays_the_layer_and_map_changes_it_missed(board) -> None:
    map, (bottom, _top), _library, editor, colleague = board

    async def scenario() -> None:
        author, _ = await open_socket(map.pk, user=editor)
        await _acked(author, "d", type="layer.display", layer=str(bottom.pk), opacity=0.1)
        await _acked(author, "v", type="map.view", zoom=3)
        late, state = await open_socket(map.pk, user=colleague)
        assert state["last_seq"] == 2
        await late.send(type="hello", last_seq=1)
        replayed = await late.expect("event")
        assert (replayed["seq"], replayed["event"], replayed["payload"]["zoom"]) == (2, "map.updated", 3)
        assert (await late.expect("synced"))["last_seq"] == 2
        await author.disconnect()
        await late.disconnect()

    run(scenario)


@pytest.mark.parametrize("who", ["viewer", "commenter"])
def test_viewers_and_commenters_may_not_change_layers_or_the_map(board, who: str) -> None:
    map, (bottom, top), library, _editor, _colleague = board
    if who == "viewer":
        user = MembershipFactory(workspace=map.workspace, role=Role.VIEWER).user
    else:
        user = CollaboratorFactory(map=map, permission=Grant.COMMENT).user
    before = _placements(map)
    attempts = [
        {"type": "layer.add", "layer": str(library.pk)},
        {"type": "layer.remove", "layer": str(bottom.pk)},
        {"type": "layer.reorder", "layers": [str(top.pk), str(bottom.pk)]},
        {"type": "layer.display", "layer": str(bottom.pk), "is_visible": False},
        {"type": "layer.style", "layer": str(bottom.pk), "style_config": {"color": "#000000"}},
        {"type": "map.view", "zoom": 9},
        {"type": "map.settings", "name": "mine now"},
    ]

    async def scenario() -> None:
        socket, _ = await open_socket(map.pk, user=user)
        for index, attempt in enumerate(attempts):
            await socket.send(client_msg_id=str(index), **attempt)
            error = await socket.expect("error")
            assert (error["code"], error["client_msg_id"]) == ("forbidden", str(index)), attempt
        await socket.disconnect()

    run(scenario)
    assert _placements(map) == before
    assert _event_types(map) == []
    assert _map_row(map).name == map.name


def test_only_managers_change_visibility_and_their_change_closes_sockets_that_lost_access(board) -> None:
    map, _layers, _library, editor, _colleague = board
    admin = MembershipFactory(workspace=map.workspace, role=Role.ADMIN).user

    async def scenario() -> None:
        watching, _ = await open_socket(map.pk, user=editor)
        await watching.send(type="map.settings", client_msg_id="e", visibility="private")
        assert (await watching.expect("error", client_msg_id="e"))["code"] == "forbidden"
        manager, _ = await open_socket(map.pk, user=admin)
        await _acked(manager, "p", type="map.settings", visibility="private")
        assert await watching.closed() == 4403  # an editor who did not create the map cannot see it now
        await manager.disconnect()
        await watching.disconnect()

    run(scenario)
    assert _map_row(map).visibility == Visibility.PRIVATE


def test_bad_layer_and_map_changes_are_refused_with_the_field_named_and_nothing_changes(board) -> None:
    map, (bottom, top), library, editor, _colleague = board
    before = _placements(map)

    async def scenario() -> None:
        socket, _ = await open_socket(map.pk, user=editor)
        await socket.send(type="layer.display", client_msg_id="1", layer=str(bottom.pk))
        empty = await socket.expect("error", client_msg_id="1")
        assert empty["code"] == "invalid" and "is_visible, opacity" in empty["details"][0]["msg"]
        await socket.send(type="layer.display", client_msg_id="2", layer=str(bottom.pk), opacity=1.5)
        assert (await socket.expect("error", client_msg_id="2"))["details"][0]["loc"] == ["opacity"]
        await socket.send(type="layer.reorder", client_msg_id="3", layers=[str(top.pk)])
        partial = await socket.expect("error", client_msg_id="3")
        assert (partial["code"], partial["field"]) == ("invalid", "layers")
        await socket.send(type="layer.add", client_msg_id="4", layer=str(bottom.pk))
        assert (await socket.expect("error", client_msg_id="4"))["code"] == "already_exists"
        await socket.send(type="layer.style", client_msg_id="5", layer=str(top.pk), style_config={"color": "red"})
        style = await socket.expect("error", client_msg_id="5")
        assert (style["code"], style["field"]) == ("invalid", "style_config.color")
        await socket.send(type="map.view", client_msg_id="6", pitch=90)
        assert (await socket.expect("error", client_msg_id="6"))["details"][0]["loc"] == ["pitch"]
        await socket.send(type="map.settings", client_msg_id="7", basemap="satellite")
        assert (await socket.expect("error", client_msg_id="7"))["details"][0]["loc"] == ["basemap"]
        await socket.send(type="layer.remove", client_msg_id="8", layer=str(library.pk))
        assert (await socket.expect("error", client_msg_id="8"))["code"] == "not_found"
        await socket.disconnect()

    run(scenario)
    assert _placements(map) == before
    assert _event_types(map) == []


def test_layer_changes_on_one_map_reach_neither_another_maps_sockets_nor_its_layers(board) -> None:
    map, (bottom, _top), _library, editor, _colleague = board
    elsewhere = MapLayerFactory(map__workspace=map.workspace)
    foreign = MapLayerFactory()  # another workspace's map and layer

    async def scenario() -> None:
        here, _ = await open_socket(map.pk, user=editor)
        there, _ = await open_socket(elsewhere.map.pk, user=editor)
        await there.hello(0)
        await _acked(here, "d", type="layer.display", layer=str(bottom.pk), is_visible=False)
        await _acked(here, "v", type="map.view", zoom=7)
        assert await there.drain() == []
        # Through this socket, only this map's layers: another map's layer, or another workspace's, is not found.
        for index, layer in enumerate((elsewhere.layer, foreign.layer)):
            await here.send(type="layer.display", client_msg_id=f"o{index}", layer=str(layer.pk), is_visible=False)
            assert (await here.expect("error", client_msg_id=f"o{index}"))["code"] == "not_found"
        await here.send(type="layer.add", client_msg_id="add", layer=str(foreign.layer.pk))
        assert (await here.expect("error", client_msg_id="add"))["code"] == "not_found"
        await here.disconnect()
        await there.disconnect()

    run(scenario)
    assert _placements(elsewhere.map)[0][2] is True
    assert _placements(foreign.map)[0][2] is True
    assert _event_types(elsewhere.map) == []
