"""The lean hot-path selectors decide exactly as the full ones, for every actor and map of the matrix's world.

`map_for_lean` and `layer_access_lean` build unsaved instances from one plain query so
socket edits and tiles skip the ORM; they must never admit or refuse anyone the full
selectors would not.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from apps.core.errors import NotFound
from apps.layers.selectors import layer_access, layer_access_lean
from apps.maps.selectors import actor_for, map_for, map_for_lean
from tests.authz_world import ACTORS, World, build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> World:
    return build_world()


def _outcome(select, *args):
    try:
        return select(*args)
    except NotFound:
        return None


@pytest.mark.parametrize("actor", ACTORS)
def test_map_for_lean_admits_exactly_whom_map_for_admits(world: World, actor: str) -> None:
    who = actor_for(world.actors[actor] or AnonymousUser())
    for side in (world.a, world.b):
        for kind, map in side.maps.items():
            full, lean = _outcome(map_for, who, map.pk), _outcome(map_for_lean, who, map.pk)
            assert (full is None) == (lean is None), (actor, kind)
            if full is not None:
                fields = ("pk", "workspace_id", "visibility", "created_by_id", "share_token", "last_event_seq")
                assert [getattr(lean, f) for f in fields] == [getattr(full, f) for f in fields], (actor, kind)


@pytest.mark.parametrize("actor", ACTORS)
def test_layer_access_lean_grants_exactly_what_layer_access_grants(world: World, actor: str) -> None:
    who = actor_for(world.actors[actor] or AnonymousUser())
    for side in (world.a, world.b):
        for kind, layer in side.layers.items():
            full, lean = _outcome(layer_access, who, layer.pk), _outcome(layer_access_lean, who, layer.pk)
            assert (full is None) == (lean is None), (actor, kind)
            if full is not None:
                assert lean.actions == full.actions, (actor, kind)
                assert {m.pk for m in lean.maps} == {m.pk for m in full.maps}, (actor, kind)


def test_map_for_lean_treats_a_malformed_or_unknown_id_as_missing(world: World) -> None:
    who = actor_for(world.actors["owner"])
    assert _outcome(map_for_lean, who, "not-a-uuid") is None
    assert _outcome(map_for_lean, who, "00000000-0000-0000-0000-000000000000") is None
