"""The authorization matrix for the map socket: connect, then every client message type, for every actor.

The POLICY table is the decision, written from the rules in the docstring of `apps/maps/permissions.py`
(DESIGN §3) and docs/PROTOCOL.md, not computed from the code. A client message type in
`apps/collaboration/protocol.py` without rows here fails the completeness check, so a new message
cannot ship without someone deciding who may send it, and a new websocket route fails until it has
a matrix of its own.

The world is tests/authz_world.py's: A's maps (private, workspace, public) are created by A's owner,
and `b-workspace` is B's workspace-visible map. Columns, in order:

    own  A's owner          col  an editor of B with an accepted `edit` grant on A's private map
    adm  A's admin          non  a viewer of B with no grant in A
    edi  A's editor         ano  nobody signed in
    vie  A's viewer

What each cell means:
- connect: `open` (presence.state arrives) or the close code (4404: missing or invisible, never told apart);
- `-`: not applicable, the socket was refused;
- hello: `synced`;
- cursor, selection: `relayed` (another connection on the map received it, the sender got no error), or
  the error code the sender got;
- writes: `ack` (and the row was written as acknowledged), or the error code (and nothing was written).
  `layer.add` probes with a fresh library layer of the map's workspace, which a guest cannot see
  (`not_found`): a guest adds only layers already shared with them.

The rules the table follows: a private map is for its creator, admins and owners, and accepted
collaborators; workspace maps for members (viewers view and comment, editors also edit); anyone views
a public map, but without a role or a grant nobody comments or edits there. Layer and map changes
(`layer.*`, `map.view`, `map.settings` without visibility) follow the feature edits: they need `edit`
on the map. Signed-in people who may see a map share cursor and selection; anonymous visitors may
send only `hello`.
"""

from __future__ import annotations

import asyncio
import random
import typing
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import transaction

from apps.collaboration import protocol
from apps.collaboration.routing import websocket_urlpatterns
from apps.collaboration.tests.conftest import Socket, open_socket, run
from apps.comments.models import Comment
from apps.layers.models import Feature, Layer
from apps.maps.models import Map, MapLayer
from tests.authz_world import ACTORS, World, build_world
from tests.factories import FeatureFactory, LayerFactory, MapLayerFactory

pytestmark = pytest.mark.django_db(transaction=True)

MAPS = ("private", "workspace", "public", "b-workspace")
CONNECT = "connect"

# fmt: off
POLICY: dict[tuple[str, str], str] = {
    #                                       own      adm      edi      vie        col        non        ano
    ("private", CONNECT):                 "open    open     4404     4404       open       4404       4404",
    ("private", "hello"):                 "synced  synced   -        -          synced     -          -",
    ("private", "cursor"):                "relayed relayed  -        -          relayed    -          -",
    ("private", "selection"):             "relayed relayed  -        -          relayed    -          -",
    ("private", "feature.create"):        "ack     ack      -        -          ack        -          -",
    ("private", "feature.update"):        "ack     ack      -        -          ack        -          -",
    ("private", "feature.delete"):        "ack     ack      -        -          ack        -          -",
    ("private", "comment.create"):        "ack     ack      -        -          ack        -          -",
    ("private", "layer.add"):             "ack     ack      -        -          not_found  -          -",
    ("private", "layer.remove"):          "ack     ack      -        -          ack        -          -",
    ("private", "layer.reorder"):         "ack     ack      -        -          ack        -          -",
    ("private", "layer.display"):         "ack     ack      -        -          ack        -          -",
    ("private", "layer.style"):           "ack     ack      -        -          ack        -          -",
    ("private", "map.view"):              "ack     ack      -        -          ack        -          -",
    ("private", "map.settings"):          "ack     ack      -        -          ack        -          -",

    ("workspace", CONNECT):               "open    open     open     open       4404       4404       4404",
    ("workspace", "hello"):               "synced  synced   synced   synced     -          -          -",
    ("workspace", "cursor"):              "relayed relayed  relayed  relayed    -          -          -",
    ("workspace", "selection"):           "relayed relayed  relayed  relayed    -          -          -",
    ("workspace", "feature.create"):      "ack     ack      ack      forbidden  -          -          -",
    ("workspace", "feature.update"):      "ack     ack      ack      forbidden  -          -          -",
    ("workspace", "feature.delete"):      "ack     ack      ack      forbidden  -          -          -",
    ("workspace", "comment.create"):      "ack     ack      ack      ack        -          -          -",
    ("workspace", "layer.add"):           "ack     ack      ack      forbidden  -          -          -",
    ("workspace", "layer.remove"):        "ack     ack      ack      forbidden  -          -          -",
    ("workspace", "layer.reorder"):       "ack     ack      ack      forbidden  -          -          -",
    ("workspace", "layer.display"):       "ack     ack      ack      forbidden  -          -          -",
    ("workspace", "layer.style"):         "ack     ack      ack      forbidden  -          -          -",
    ("workspace", "map.view"):            "ack     ack      ack      forbidden  -          -          -",
    ("workspace", "map.settings"):        "ack     ack      ack      forbidden  -          -          -",

    ("public", CONNECT):                  "open    open     open     open       open       open       open",
    ("public", "hello"):                  "synced  synced   synced   synced     synced     synced     synced",
    ("public", "cursor"):                 "relayed relayed  relayed  relayed    relayed    relayed    forbidden",
    ("public", "selection"):              "relayed relayed  relayed  relayed    relayed    relayed    forbidden",
    ("public", "feature.create"):         "ack     ack      ack      forbidden  forbidden  forbidden  forbidden",
    ("public", "feature.update"):         "ack     ack      ack      forbidden  forbidden  forbidden  forbidden",
    ("public", "feature.delete"):         "ack     ack      ack      forbidden  forbidden  forbidden  forbidden",
    ("public", "comment.create"):         "ack     ack      ack      ack        forbidden  forbidden  forbidden",
    ("public", "layer.add"):              "ack     ack      ack      forbidden  forbidden  forbidden  forbidden",
    ("public", "layer.remove"):           "ack     ack      ack      forbidden  forbidden  forbidden  forbidden",
    ("public", "layer.reorder"):          "ack     ack      ack      forbidden  forbidden  forbidden  forbidden",
    ("public", "layer.display"):          "ack     ack      ack      forbidden  forbidden  forbidden  forbidden",
    ("public", "layer.style"):            "ack     ack      ack      forbidden  forbidden  forbidden  forbidden",
    ("public", "map.view"):               "ack     ack      ack      forbidden  forbidden  forbidden  forbidden",
    ("public", "map.settings"):           "ack     ack      ack      forbidden  forbidden  forbidden  forbidden",

    ("b-workspace", CONNECT):             "4404    4404     4404     4404       open       open       4404",
    ("b-workspace", "hello"):             "-       -        -        -          synced     synced     -",
    ("b-workspace", "cursor"):            "-       -        -        -          relayed    relayed    -",
    ("b-workspace", "selection"):         "-       -        -        -          relayed    relayed    -",
    ("b-workspace", "feature.create"):    "-       -        -        -          ack        forbidden  -",
    ("b-workspace", "feature.update"):    "-       -        -        -          ack        forbidden  -",
    ("b-workspace", "feature.delete"):    "-       -        -        -          ack        forbidden  -",
    ("b-workspace", "comment.create"):    "-       -        -        -          ack        ack        -",
    ("b-workspace", "layer.add"):         "-       -        -        -          ack        forbidden  -",
    ("b-workspace", "layer.remove"):      "-       -        -        -          ack        forbidden  -",
    ("b-workspace", "layer.reorder"):     "-       -        -        -          ack        forbidden  -",
    ("b-workspace", "layer.display"):     "-       -        -        -          ack        forbidden  -",
    ("b-workspace", "layer.style"):       "-       -        -        -          ack        forbidden  -",
    ("b-workspace", "map.view"):          "-       -        -        -          ack        forbidden  -",
    ("b-workspace", "map.settings"):      "-       -        -        -          ack        forbidden  -",
}
# fmt: on

POINT = {"type": "Point", "coordinates": [24.95, 60.17]}


def client_message_types() -> set[str]:
    """Every `type` the protocol accepts from a client, read from the discriminated union."""
    union = typing.get_args(protocol.ClientMessage)[0]
    return {typing.get_args(model.model_fields["type"].annotation)[0] for model in typing.get_args(union)}


def expected(map_kind: str, message: str) -> dict[str, str]:
    cells = POLICY[(map_kind, message)].split()
    assert len(cells) == len(ACTORS), f"{map_kind} {message}: {len(cells)} cells for {len(ACTORS)} actors"
    return dict(zip(ACTORS, cells, strict=True))


# --- the probe: one connection, every message, the answer each got -----------------------------


@dataclass(frozen=True)
class Target:
    map: Map
    layer: Layer
    feature_id: int  # for `selection`: any feature on the map


def _target(world: World, map_kind: str) -> Target:
    side, kind = (world.b, "workspace") if map_kind == "b-workspace" else (world.a, map_kind)
    return Target(map=side.maps[kind], layer=side.layers[kind], feature_id=side.features[kind].pk)


class Observer:
    """A second connection on the map that records what is relayed to it (cursor, selection)."""

    def __init__(self, socket: Socket) -> None:
        self.socket = socket
        self.seen: list[dict[str, Any]] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            try:
                message = await self.socket._next(60)
            except TimeoutError:
                continue
            if message is None:
                return
            self.seen.append(message)

    async def saw(self, type: str, connection_id: str, *, timeout: float = 1.0) -> bool:
        async with asyncio.timeout(timeout):
            while not any(_relays(m, type, connection_id) for m in self.seen):
                await asyncio.sleep(0.01)
        return True


def _relays(message: dict[str, Any], type: str, connection_id: str) -> bool:
    """Whether `message` relays a `type` message sent by `connection_id` (cursors arrive batched in `cursors`)."""
    if type == "cursor" and message["type"] == "cursors":
        return any(cursor["connection_id"] == connection_id for cursor in message["cursors"])
    return message["type"] == type and message.get("connection_id") == connection_id


async def _answer(socket: Socket, *types: str) -> dict[str, Any]:
    """The next message of one of `types` (events and presence from the map are skipped)."""
    async with asyncio.timeout(3):
        while True:
            message = await socket._next(3)
            assert message is not None, f"closed with {socket.close_code} while waiting for {types}"
            if message["type"] in types:
                return message


def _fresh_feature(layer: Layer) -> int:
    return FeatureFactory(layer=layer, properties={"state": "untouched"}).pk


def _feature_row(feature_id: int) -> tuple[int, dict[str, Any]] | None:
    feature = Feature.objects.unscoped().filter(pk=feature_id).first()
    return None if feature is None else (feature.version, feature.properties)


def _feature_with(layer: Layer, marker: str) -> bool:
    return Feature.objects.unscoped().filter(layer=layer, properties__marker=marker).exists()


def _comment_with(map: Map, marker: str) -> bool:
    return Comment.objects.unscoped().filter(map=map, body=marker).exists()


def _fresh_layer(map: Map, *, on_map: bool) -> Layer:
    """A library layer of the map's workspace, by the map's creator; on the map or not yet."""
    layer = LayerFactory(workspace=map.workspace, created_by=map.created_by, is_global=True)
    if on_map:
        MapLayerFactory(map=map, layer=layer, workspace=map.workspace, display_order=100)
    return layer


def _on_map(map: Map, layer: Layer) -> bool:
    return MapLayer.objects.unscoped().filter(map=map, layer=layer).exists()


def _layer_order(map: Map, *, at_least: int = 0) -> list[str]:
    while MapLayer.objects.unscoped().filter(map=map).count() < at_least:
        _fresh_layer(map, on_map=True)
    entries = MapLayer.objects.unscoped().filter(map=map).order_by("display_order", "id")
    return [str(layer_id) for layer_id in entries.values_list("layer_id", flat=True)]


def _placement_opacity(map: Map, layer: Layer) -> float:
    return MapLayer.objects.unscoped().get(map=map, layer=layer).opacity


def _layer_colour(layer: Layer) -> str | None:
    return Layer.objects.unscoped().get(pk=layer.pk).style_config.get("color")


def _map_row(map: Map) -> Map:
    return Map.objects.unscoped().get(pk=map.pk)


class Probe:
    """Sends each message type over one connection and turns what came back into a table cell."""

    def __init__(self, socket: Socket, connection_id: str, target: Target, observer: Observer) -> None:
        self.socket, self.connection_id, self.target, self.observer = socket, connection_id, target, observer

    async def outcome(self, message_type: str) -> str:
        method = getattr(self, "_" + message_type.replace(".", "_"))
        return await method()

    async def _hello(self) -> str:
        await self.socket.send(type="hello", last_seq=None)
        return (await _answer(self.socket, "synced", "error"))["type"]

    async def _ephemeral(self, type: str, **fields: Any) -> str:
        await self.socket.send(type=type, **fields)
        # A fence: `hello` is answered after the message before it was handled, so an error comes first.
        await self.socket.send(type="hello", last_seq=None)
        reply = await _answer(self.socket, "synced", "error")
        if reply["type"] == "error":
            await _answer(self.socket, "synced")
            return reply["code"]
        try:
            await self.observer.saw(type, self.connection_id)
        except TimeoutError:
            return "dropped"
        return "relayed"

    async def _cursor(self) -> str:
        return await self._ephemeral("cursor", lng=24.9, lat=60.1)

    async def _selection(self) -> str:
        return await self._ephemeral("selection", feature_ids=[self.target.feature_id])

    async def _write(self, **message: Any) -> dict[str, Any]:
        client_msg_id = uuid.uuid4().hex
        await self.socket.send(client_msg_id=client_msg_id, **message)
        reply = await _answer(self.socket, "ack", "conflict", "error")
        assert reply.get("client_msg_id") == client_msg_id, reply
        return reply

    @staticmethod
    def _cell(reply: dict[str, Any], *, written: bool) -> str:
        """`ack` only when the row changed; a refusal only when it did not (else the mismatch shows)."""
        cell = "ack" if reply["type"] == "ack" else reply.get("code", reply["type"])
        if written != (cell == "ack"):
            return f"{cell}-but-{'written' if written else 'not-written'}"
        return cell

    async def _feature_create(self) -> str:
        marker = uuid.uuid4().hex
        layer = self.target.layer
        reply = await self._write(
            type="feature.create", layer=str(layer.pk), geometry=POINT, properties={"marker": marker}
        )
        return self._cell(reply, written=await database_sync_to_async(_feature_with)(layer, marker))

    async def _feature_update(self) -> str:
        layer = self.target.layer
        feature_id = await database_sync_to_async(_fresh_feature)(layer)
        reply = await self._write(
            type="feature.update",
            layer=str(layer.pk),
            feature_id=feature_id,
            base_version=1,
            properties={"state": "updated"},
        )
        row = await database_sync_to_async(_feature_row)(feature_id)
        return self._cell(reply, written=row == (2, {"state": "updated"}))

    async def _feature_delete(self) -> str:
        layer = self.target.layer
        feature_id = await database_sync_to_async(_fresh_feature)(layer)
        reply = await self._write(type="feature.delete", layer=str(layer.pk), feature_id=feature_id, base_version=1)
        return self._cell(reply, written=await database_sync_to_async(_feature_row)(feature_id) is None)

    async def _layer_add(self) -> str:
        layer = await database_sync_to_async(_fresh_layer)(self.target.map, on_map=False)
        reply = await self._write(type="layer.add", layer=str(layer.pk))
        return self._cell(reply, written=await database_sync_to_async(_on_map)(self.target.map, layer))

    async def _layer_remove(self) -> str:
        layer = await database_sync_to_async(_fresh_layer)(self.target.map, on_map=True)
        reply = await self._write(type="layer.remove", layer=str(layer.pk))
        return self._cell(reply, written=not await database_sync_to_async(_on_map)(self.target.map, layer))

    async def _layer_reorder(self) -> str:
        wanted = list(reversed(await database_sync_to_async(_layer_order)(self.target.map, at_least=2)))
        reply = await self._write(type="layer.reorder", layers=wanted)
        return self._cell(reply, written=await database_sync_to_async(_layer_order)(self.target.map) == wanted)

    async def _layer_display(self) -> str:
        opacity = round(random.uniform(0.01, 0.99), 6)
        reply = await self._write(type="layer.display", layer=str(self.target.layer.pk), opacity=opacity)
        stored = await database_sync_to_async(_placement_opacity)(self.target.map, self.target.layer)
        return self._cell(reply, written=stored == opacity)

    async def _layer_style(self) -> str:
        color = f"#{uuid.uuid4().hex[:6]}"
        layer = self.target.layer
        reply = await self._write(type="layer.style", layer=str(layer.pk), style_config={"color": color})
        return self._cell(reply, written=await database_sync_to_async(_layer_colour)(layer) == color)

    async def _map_view(self) -> str:
        zoom = round(random.uniform(1, 20), 6)
        reply = await self._write(type="map.view", zoom=zoom)
        return self._cell(reply, written=(await database_sync_to_async(_map_row)(self.target.map)).zoom == zoom)

    async def _map_settings(self) -> str:
        marker = uuid.uuid4().hex
        reply = await self._write(type="map.settings", name=marker)
        return self._cell(reply, written=(await database_sync_to_async(_map_row)(self.target.map)).name == marker)

    async def _comment_create(self) -> str:
        marker = uuid.uuid4().hex
        reply = await self._write(type="comment.create", body=marker)
        return self._cell(reply, written=await database_sync_to_async(_comment_with)(self.target.map, marker))


# --- the tests ----------------------------------------------------------------------------------


@pytest.fixture
def world() -> Iterator[World]:
    with transaction.atomic():  # the world logs map events, which must be part of a transaction
        built = build_world()
    yield built


def _observed(world: World, map_kind: str) -> dict[tuple[str, str], str]:
    """(message, actor) → cell, for every actor and every message the policy table names."""
    target = _target(world, map_kind)
    watcher = world.b.users["owner"] if map_kind == "b-workspace" else world.a.users["owner"]
    messages = [message for (kind, message) in POLICY if kind == map_kind and message != CONNECT]
    observed: dict[tuple[str, str], str] = {}

    async def scenario() -> None:
        watching, _ = await open_socket(target.map.pk, user=watcher)
        observer = Observer(watching)
        sockets = [watching]
        for actor in ACTORS:
            socket, state = await open_socket(target.map.pk, user=world.actors[actor])
            sockets.append(socket)
            if state.get("type") != "presence.state":
                observed[(CONNECT, actor)] = str(await socket.closed())
                observed.update({(message, actor): "-" for message in messages})
                continue
            observed[(CONNECT, actor)] = "open"
            probe = Probe(socket, state["connection_id"], target, observer)
            for message in messages:
                observed[(message, actor)] = await probe.outcome(message)
        observer.task.cancel()
        await asyncio.gather(*(socket.disconnect() for socket in sockets))

    run(scenario)
    return observed


@pytest.mark.parametrize("map_kind", MAPS)
def test_each_socket_message_is_answered_as_the_rules_say_for_each_actor(world: World, map_kind: str) -> None:
    observed = _observed(world, map_kind)
    mismatches = [
        f"{map_kind} {message} as {actor}: expected {cell}, got {observed[(message, actor)]}"
        for (kind, message) in POLICY
        if kind == map_kind
        for actor, cell in expected(map_kind, message).items()
        if observed[(message, actor)] != cell
    ]
    assert not mismatches, "\n".join(mismatches)


def test_every_websocket_route_has_a_matrix() -> None:
    """A new socket route needs its own matrix before it ships: this module, or the one named here."""
    matrices = {
        "ws/maps/<uuid:map_id>/": "tests/test_socket_authorization_matrix.py",
        "ws/me/": "tests/test_user_socket_authorization_matrix.py",
    }
    assert [str(pattern.pattern) for pattern in websocket_urlpatterns] == list(matrices)
    assert all((Path(settings.BASE_DIR) / module).is_file() for module in matrices.values())


def test_every_client_message_type_has_a_policy_row_for_every_map() -> None:
    wanted = {(map_kind, message) for map_kind in MAPS for message in {CONNECT, *client_message_types()}}
    assert set(POLICY) == wanted, {"missing": wanted - set(POLICY), "unknown": set(POLICY) - wanted}


def test_every_policy_row_has_a_cell_per_actor_from_the_known_outcomes() -> None:
    known = {"open", "4404", "-", "synced", "relayed", "ack", "forbidden", "not_found"}
    for map_kind, message in POLICY:
        cells = expected(map_kind, message)
        assert set(cells.values()) <= known, (map_kind, message, cells)
        refused = {actor for actor, cell in expected(map_kind, CONNECT).items() if cell != "open"}
        assert message == CONNECT or all(cells[actor] == "-" for actor in refused), (map_kind, message)
