"""Edits over the socket go through the feature and comment services: ack or conflict, fan-out with seq."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from apps.collaboration.protocol import MAX_MESSAGE_BYTES
from apps.collaboration.tests.conftest import open_socket, run
from apps.comments.models import Comment
from apps.layers.models import Feature
from apps.maps.models import Grant
from apps.workspaces.models import Role
from conftest import client_for
from tests.factories import CollaboratorFactory, FeatureFactory, MapLayerFactory, MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)

POINT = {"type": "Point", "coordinates": [24.95, 60.17]}


@pytest.fixture
def board():
    entry = MapLayerFactory()
    map, layer = entry.map, entry.layer
    editor = MembershipFactory(workspace=map.workspace, role=Role.EDITOR).user
    colleague = MembershipFactory(workspace=map.workspace, role=Role.EDITOR).user
    return map, layer, editor, colleague


def _feature(feature_id: int) -> Feature | None:
    return Feature.objects.unscoped().filter(pk=feature_id).first()


def test_a_created_feature_is_acked_to_its_author_and_broadcast_to_everyone_with_its_seq(board) -> None:
    map, layer, editor, colleague = board

    async def scenario() -> None:
        author, _ = await open_socket(map.pk, user=editor)
        other, _ = await open_socket(map.pk, user=colleague)
        await author.hello(0)
        await other.hello(0)
        await author.send(
            type="feature.create",
            client_msg_id="m1",
            layer=str(layer.pk),
            geometry=POINT,
            properties={"name": "Kiasma"},
        )
        ack = await author.expect("ack")
        assert (ack["client_msg_id"], ack["version"], ack["seq"]) == ("m1", 1, 1)
        for socket in (author, other):
            event = await socket.expect("event")
            assert (event["seq"], event["event"], event["actor"]) == (1, "feature.created", editor.pk)
            assert event["payload"]["id"] == ack["feature_id"]
            assert event["payload"]["properties"] == {"name": "Kiasma"}
        feature = await database_sync_to_async(_feature)(ack["feature_id"])
        assert feature is not None and feature.properties == {"name": "Kiasma"}
        await author.disconnect()
        await other.disconnect()

    run(scenario)


def test_an_update_with_the_current_base_version_is_acked_and_broadcast(board) -> None:
    map, layer, editor, colleague = board
    feature = FeatureFactory(layer=layer, properties={"name": "old"})

    async def scenario() -> None:
        author, _ = await open_socket(map.pk, user=editor)
        other, _ = await open_socket(map.pk, user=colleague)
        await other.hello(0)
        await author.send(
            type="feature.update",
            client_msg_id="u1",
            layer=str(layer.pk),
            feature_id=feature.pk,
            base_version=1,
            properties={"name": "new"},
        )
        ack = await author.expect("ack")
        assert (ack["feature_id"], ack["version"], ack["seq"]) == (feature.pk, 2, 1)
        event = await other.expect("event")
        assert (event["seq"], event["event"], event["payload"]["version"]) == (1, "feature.updated", 2)
        assert (await database_sync_to_async(_feature)(feature.pk)).properties == {"name": "new"}
        await author.disconnect()
        await other.disconnect()

    run(scenario)


def test_a_stale_base_version_gets_a_conflict_with_the_current_state_and_overwrites_nothing(board) -> None:
    map, layer, editor, _colleague = board
    feature = FeatureFactory(layer=layer, properties={"name": "theirs"})

    async def scenario() -> None:
        socket, _ = await open_socket(map.pk, user=editor)
        base = {"client_msg_id": "late", "layer": str(layer.pk), "feature_id": feature.pk}
        await socket.send(
            type="feature.update", base_version=1, properties={"name": "first"}, **{**base, "client_msg_id": "first"}
        )
        assert (await socket.expect("ack"))["version"] == 2
        await socket.send(type="feature.update", base_version=1, properties={"name": "mine"}, **base)
        conflict = await socket.expect("conflict")
        assert conflict["client_msg_id"] == "late"
        assert conflict["current"]["version"] == 2
        assert conflict["current"]["properties"] == {"name": "first"}
        assert conflict["current"]["geometry"]["type"] == "Point"
        await socket.send(type="feature.delete", base_version=1, **{**base, "client_msg_id": "del"})
        assert (await socket.expect("conflict"))["client_msg_id"] == "del"
        stored = await database_sync_to_async(_feature)(feature.pk)
        assert (stored.version, stored.properties) == (2, {"name": "first"})
        await socket.send(type="feature.delete", base_version=2, **{**base, "client_msg_id": "del2"})
        assert (await socket.expect("ack"))["client_msg_id"] == "del2"
        assert await database_sync_to_async(_feature)(feature.pk) is None
        await socket.send(type="feature.update", base_version=3, properties={}, **base)
        gone = await socket.expect("conflict")
        assert gone["current"] is None
        await socket.disconnect()

    run(scenario)


def test_a_viewer_edit_is_refused_and_nothing_is_written(board) -> None:
    map, layer, _editor, _colleague = board
    viewer = MembershipFactory(workspace=map.workspace, role=Role.VIEWER).user
    feature = FeatureFactory(layer=layer)

    async def scenario() -> None:
        socket, _ = await open_socket(map.pk, user=viewer)
        await socket.send(type="feature.create", client_msg_id="v1", layer=str(layer.pk), geometry=POINT)
        error = await socket.expect("error")
        assert (error["code"], error["client_msg_id"]) == ("forbidden", "v1")
        await socket.send(
            type="feature.delete", client_msg_id="v2", layer=str(layer.pk), feature_id=feature.pk, base_version=1
        )
        assert (await socket.expect("error"))["code"] == "forbidden"
        await socket.disconnect()

    run(scenario)
    assert Feature.objects.unscoped().filter(layer=layer).count() == 1


def test_a_comment_grant_may_comment_but_not_edit(board) -> None:
    map, layer, editor, _colleague = board
    commenter = CollaboratorFactory(map=map, permission=Grant.COMMENT).user

    async def scenario() -> None:
        watcher, _ = await open_socket(map.pk, user=editor)
        await watcher.hello(0)
        socket, state = await open_socket(map.pk, user=commenter)
        assert set(state["permissions"]) == {"view", "comment"}
        await socket.send(
            type="comment.create", client_msg_id="c1", body="Is this the museum?", anchor={"lng": 24.9, "lat": 60.1}
        )
        ack = await socket.expect("ack")
        assert ack["seq"] == 1 and ack["comment_id"]
        event = await watcher.expect("event")
        assert (event["event"], event["payload"]["comment"]) == ("comment.created", ack["comment_id"])
        await socket.send(type="feature.create", client_msg_id="f1", layer=str(layer.pk), geometry=POINT)
        assert (await socket.expect("error"))["code"] == "forbidden"
        await socket.disconnect()
        await watcher.disconnect()

    run(scenario)
    assert Comment.objects.unscoped().get().body == "Is this the museum?"
    assert Feature.objects.unscoped().filter(layer=layer).count() == 0


def test_an_edit_made_through_rest_reaches_the_socket(board) -> None:
    map, layer, editor, colleague = board
    client = client_for(editor)

    async def scenario() -> None:
        socket, _ = await open_socket(map.pk, user=colleague)
        await socket.hello(0)
        body = {"type": "Feature", "geometry": POINT, "properties": {"name": "via REST"}}
        response = await sync_to_async(client.post)(f"/api/v1/layers/{layer.pk}/features/", body, format="json")
        assert response.status_code == 201
        event = await socket.expect("event")
        assert (event["seq"], event["event"]) == (1, "feature.created")
        assert event["payload"]["id"] == response.json()["id"]
        await socket.disconnect()

    run(scenario)


def test_one_maps_events_never_reach_another_maps_sockets(board) -> None:
    map, layer, editor, _colleague = board
    elsewhere = MapLayerFactory(map__workspace=map.workspace)

    async def scenario() -> None:
        here, _ = await open_socket(map.pk, user=editor)
        there, _ = await open_socket(elsewhere.map.pk, user=editor)
        await here.hello(0)
        await there.hello(0)
        await here.send(type="feature.create", client_msg_id="a", layer=str(layer.pk), geometry=POINT)
        await here.expect("event")
        await here.send(type="cursor", lng=1.0, lat=2.0)
        assert await there.drain() == []
        # A layer that is not on the socket's map cannot be edited through it.
        await there.send(type="feature.create", client_msg_id="b", layer=str(layer.pk), geometry=POINT)
        assert (await there.expect("error"))["code"] == "not_found"
        await here.disconnect()
        await there.disconnect()

    run(scenario)


def test_malformed_messages_get_error_codes_and_the_socket_stays_open(board) -> None:
    map, layer, editor, _colleague = board

    async def scenario() -> None:
        socket, _ = await open_socket(map.pk, user=editor)
        await socket.send(type="teleport", client_msg_id="x1")
        error = await socket.expect("error")
        assert (error["code"], error["client_msg_id"]) == ("unknown_type", "x1")
        await socket.send_text("{not json")
        assert (await socket.expect("error"))["code"] == "invalid_json"
        await socket.send(type="cursor", lng=500, lat=0)
        invalid = await socket.expect("error")
        assert invalid["code"] == "invalid" and invalid["details"][0]["loc"] == ["lng"]
        await socket.send(type="feature.create", client_msg_id="y", layer="not-a-uuid", geometry=POINT)
        assert (await socket.expect("error"))["code"] == "invalid"
        huge = json.dumps({"type": "comment.create", "client_msg_id": "big", "body": "x" * MAX_MESSAGE_BYTES})
        await socket.send_text(huge)
        assert (await socket.expect("error"))["code"] == "too_large"
        await socket.communicator.send_to(bytes_data=b"\x00\x01")
        assert (await socket.expect("error"))["code"] == "binary_unsupported"
        await socket.send(type="feature.create", client_msg_id="ok", layer=str(layer.pk), geometry=POINT)
        assert (await socket.expect("ack"))["client_msg_id"] == "ok"
        await socket.disconnect()

    run(scenario)
