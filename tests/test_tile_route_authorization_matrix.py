"""The authorization matrix's tile rows, answered by the warm-tile ASGI route.

The route reads through its own connections, so this world is committed (the main
matrix keeps its world in a transaction the route cannot see). Every `.mvt` row of
TILE_POLICY is asked twice per actor and credential (session cookie, API token): once
through Django to warm the cache, then through the route, which must answer the policy's
status and serve every allowed tile itself.
"""

from __future__ import annotations

import pytest
from django.db import transaction

from apps.accounts.models import User
from apps.accounts.services import api_token_create
from tests.asgi_client import session_cookie, through_django, through_route
from tests.authz_routes import fill
from tests.authz_world import ACTORS, build_world
from tests.test_authorization_matrix import TILE_POLICY

pytestmark = pytest.mark.django_db(transaction=True)

GZIP = {"accept-encoding": "gzip"}


def _credentials(user: User | None, credential: str) -> dict[str, str]:
    if user is None:
        return GZIP
    if credential == "session":
        return {**GZIP, "cookie": session_cookie(user)}
    _token, key = api_token_create(user=user, name="tile matrix")
    return {**GZIP, "authorization": f"Token {key}"}


@pytest.mark.parametrize("credential", ["session", "api_token"])
def test_warm_tile_route_answers_each_actor_as_the_tile_policy_says(credential: str) -> None:
    with transaction.atomic():  # committed: the route reads through its own connections
        world = build_world()
    tile_rows = [entry for entry in TILE_POLICY if entry.path.endswith(".mvt")]
    assert tile_rows, "TILE_POLICY lost its tile rows"
    wrong = []
    for entry in tile_rows:
        path = "/tiles/" + fill(entry.path, world.placeholders())
        for actor in ACTORS:
            user = world.actors[actor]
            headers = _credentials(user, credential)
            through_django(path, headers)
            answer = through_route(path, headers)
            expected = entry.expected[actor]
            if answer.status != expected or answer.by_django is (expected == 200):
                wrong.append(f"{entry.label} as {actor}: {answer.status} (django: {answer.by_django}), want {expected}")
    assert not wrong, "\n".join(wrong)
