"""Round trips of a socket feature write, pinned: each one is paid per edit, most under the map's row lock.

A round trip more is a regression of `make bench-realtime`'s edit fan-out; change
these numbers only with a reason in the commit.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import User
from apps.collaboration.protocol import FeatureCreate, FeatureDelete, FeatureUpdate, WriteMessage
from apps.collaboration.writes import write_reply
from apps.maps.models import Map
from apps.workspaces.models import Role
from tests.factories import FeatureFactory, MapLayerFactory, MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)

POINT = {"type": "Point", "coordinates": [24.95, 60.17]}


@pytest.fixture
def board() -> tuple[Map, Any, User]:
    entry = MapLayerFactory(layer__geometry_type="point")
    editor = MembershipFactory(workspace=entry.map.workspace, role=Role.EDITOR).user
    return entry.map, entry.layer, editor


def _written(user: User, map: Map, message: WriteMessage) -> tuple[dict[str, Any], list[str]]:
    with CaptureQueriesContext(connection) as queries:
        reply = write_reply(user, str(map.pk), message)
    return reply, [query["sql"] for query in queries.captured_queries]


def test_a_socket_feature_create_costs_8_round_trips(board) -> None:
    map, layer, editor = board
    message = FeatureCreate(type="feature.create", client_msg_id="c1", layer=layer.pk, geometry=POINT)
    reply, queries = _written(editor, map, message)
    assert (reply["type"], reply["seq"]) == ("ack", 1), reply
    assert len(queries) == 8, "\n".join(queries)
    assert not [sql for sql in queries if "SAVEPOINT" in sql]


def test_a_feature_create_locks_the_layer_only_after_its_insert(board) -> None:
    """Creates on one layer queue on its row lock only for the layer update, the event and the commit."""
    map, layer, editor = board
    message = FeatureCreate(type="feature.create", client_msg_id="c1", layer=layer.pk, geometry=POINT)
    _reply, queries = _written(editor, map, message)
    assert not [sql for sql in queries if "FOR UPDATE" in sql], "\n".join(queries)
    insert = next(i for i, sql in enumerate(queries) if sql.startswith('INSERT INTO "layers_feature"'))
    touch = next(i for i, sql in enumerate(queries) if "UPDATE layers_layer" in sql)
    assert insert < touch == len(queries) - 3, "\n".join(queries)  # then the event append, then COMMIT


def test_a_socket_feature_update_costs_10_round_trips(board) -> None:
    map, layer, editor = board
    feature = FeatureFactory(layer=layer, properties={"name": "old"})
    message = FeatureUpdate(
        type="feature.update",
        client_msg_id="u1",
        layer=layer.pk,
        feature_id=feature.pk,
        base_version=feature.version,
        properties={"name": "new"},
    )
    reply, queries = _written(editor, map, message)
    assert (reply["type"], reply["seq"], reply["version"]) == ("ack", 1, feature.version + 1), reply
    assert len(queries) == 10, "\n".join(queries)


def test_a_socket_feature_delete_costs_11_round_trips(board) -> None:
    map, layer, editor = board
    feature = FeatureFactory(layer=layer)
    message = FeatureDelete(
        type="feature.delete", client_msg_id="d1", layer=layer.pk, feature_id=feature.pk, base_version=feature.version
    )
    reply, queries = _written(editor, map, message)
    assert (reply["type"], reply["seq"]) == ("ack", 1), reply
    assert len(queries) == 11, "\n".join(queries)
