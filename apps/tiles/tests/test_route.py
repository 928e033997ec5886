"""The warm-tile ASGI route answers exactly as the Django tile view, or lets Django answer.

Both are driven as ASGI apps against real PostGIS and Redis: each request goes to the
route (in front of Django, as config.asgi wires it) and straight to Django, and the
status, headers and body must be equal. A recording Django app tells who answered.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.gis.geos import Point
from django.test import Client

from apps.accounts.models import User
from apps.layers.models import Layer
from apps.maps.models import Map, MapCollaborator
from apps.workspaces.models import Role
from tests.asgi_client import Answer, session_cookie, through_django, through_route
from tests.factories import CollaboratorFactory, FeatureFactory, MapLayerFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)  # the route reads through its own connections


GZIP = {"accept-encoding": "gzip, deflate"}


@dataclass
class World:
    private: Layer
    workspace: Layer
    public: Layer
    public_map: Map
    owner: User
    viewer: User
    collaborator: User
    outsider: User


@pytest.fixture
def world() -> World:
    private = MapLayerFactory(map__visibility="private")
    ws = private.map.workspace
    workspace = MapLayerFactory(map__workspace=ws, map__visibility="workspace")
    public = MapLayerFactory(map__workspace=ws, map__visibility="public")
    for entry in (private, workspace, public):
        FeatureFactory(layer=entry.layer, geom=Point(24.94, 60.17, srid=4326))
    owner = MembershipFactory(workspace=ws, role=Role.OWNER).user
    viewer = MembershipFactory(workspace=ws, role=Role.VIEWER).user
    collaborator = CollaboratorFactory(map=private.map).user
    return World(private.layer, workspace.layer, public.layer, public.map, owner, viewer, collaborator, UserFactory())


def tile(layer: Layer, zxy: str = "0/0/0", query: str = "") -> str:
    return f"/tiles/layers/{layer.pk}/{zxy}.mvt" + (f"?{query}" if query else "")


def assert_same(path: str, headers: dict[str, str], *, route_answers: bool) -> Answer:
    """Warm the cache through Django, then the route and Django must answer alike."""
    through_django(path, headers)
    routed = through_route(path, headers)
    plain = through_django(path, headers)
    assert (routed.status, routed.headers, routed.body) == (plain.status, plain.headers, plain.body)
    assert routed.by_django is not route_answers, (routed.status, routed.by_django)
    return routed


ACTOR_CASES = [
    # actor, layer, expected status, served by the route
    ("owner", "private", 200, True),
    ("owner", "workspace", 200, True),
    ("viewer", "private", 404, False),
    ("viewer", "workspace", 200, True),
    ("collaborator", "private", 200, True),
    ("collaborator", "workspace", 404, False),
    ("outsider", "workspace", 404, False),
    ("outsider", "public", 200, True),
    ("anonymous", "private", 404, False),
    ("anonymous", "public", 200, True),
]


@pytest.mark.parametrize(("actor", "layer", "status", "served"), ACTOR_CASES)
def test_route_answers_each_actor_as_the_view(world: World, actor: str, layer: str, status: int, served: bool) -> None:
    headers = dict(GZIP)
    if actor != "anonymous":
        headers["cookie"] = session_cookie(getattr(world, actor))
    answer = assert_same(tile(getattr(world, layer)), headers, route_answers=served)
    assert answer.status == status


def test_anonymous_with_share_token_gets_the_public_tile_and_a_revoked_one_gets_404(world: World) -> None:
    path = tile(world.public, query=f"share_token={world.public_map.share_token}")
    assert assert_same(path, GZIP, route_answers=True).status == 200
    Map.objects.unscoped().filter(pk=world.public_map.pk).update(visibility="private")
    assert assert_same(path, GZIP, route_answers=False).status == 404


def test_removed_collaborator_gets_404(world: World) -> None:
    headers = {**GZIP, "cookie": session_cookie(world.collaborator)}
    assert assert_same(tile(world.private), headers, route_answers=True).status == 200
    MapCollaborator.objects.unscoped().filter(user=world.collaborator).delete()
    assert assert_same(tile(world.private), headers, route_answers=False).status == 404


def test_inactive_user_is_left_to_django(world: World) -> None:
    headers = {**GZIP, "cookie": session_cookie(world.owner)}
    User.objects.filter(pk=world.owner.pk).update(is_active=False)
    assert assert_same(tile(world.private), headers, route_answers=False).status == 404


def test_logged_out_session_is_left_to_django(world: World) -> None:
    client = Client()
    client.force_login(world.owner)
    headers = {**GZIP, "cookie": f"sessionid={client.cookies['sessionid'].value}"}
    client.logout()
    assert assert_same(tile(world.private), headers, route_answers=False).status == 404


def test_changed_password_invalidates_the_session_for_the_route_too(world: World) -> None:
    headers = {**GZIP, "cookie": session_cookie(world.owner)}
    world.owner.set_password("a-new-password-123")
    world.owner.save()
    through_django(tile(world.private), GZIP)  # warm, as nobody would be allowed to
    routed = through_route(tile(world.private), headers)
    assert routed.by_django and routed.status == 404


def test_if_none_match_answers_304_like_the_view(world: World) -> None:
    headers = {**GZIP, "cookie": session_cookie(world.viewer)}
    etag = through_django(tile(world.workspace), headers).headers["etag"]
    answer = assert_same(tile(world.workspace), {**headers, "if-none-match": etag}, route_answers=True)
    assert answer.status == 304


def test_empty_tile_answers_204_like_the_view(world: World) -> None:
    path = tile(world.public, "10/0/0", query=f"v={world.public.data_version}")
    answer = assert_same(path, GZIP, route_answers=True)
    assert answer.status == 204
    assert answer.headers["cache-control"] == "public, max-age=86400"


def test_cache_miss_falls_through_to_django(world: World) -> None:
    routed = through_route(tile(world.public), GZIP)
    assert routed.by_django and routed.status == 200
    assert through_route(tile(world.public), GZIP).by_django is False  # now warm


def test_invalid_filters_unknown_tokens_and_plain_clients_are_left_to_django(world: World) -> None:
    through_django(tile(world.public), GZIP)
    for path, headers in [
        (tile(world.public, query="name=Feature"), GZIP),  # not in the layer's schema: Django's 400
        (tile(world.public), {**GZIP, "authorization": "Token nope"}),
        (tile(world.public), {}),
    ]:
        assert through_route(path, headers).by_django, (path, headers)


def test_filtered_tiles_are_served_per_filter_and_bad_filters_get_djangos_400(world: World) -> None:
    Layer.objects.unscoped().filter(pk=world.public.pk).update(attribute_schema={"name": "string", "rank": "integer"})
    served = assert_same(tile(world.public, query="rank__gte=0&name__ne=x"), GZIP, route_answers=True)
    assert served.status == 200
    assert through_route(tile(world.public, query="rank__gte=5"), GZIP).by_django  # another filter: not cached
    bad = assert_same(tile(world.public, query="rank__gte=lots"), GZIP, route_answers=False)
    assert bad.status == 400


def test_edit_bumps_the_key_so_the_route_serves_no_stale_tile(world: World) -> None:
    assert_same(tile(world.public), GZIP, route_answers=True)
    Layer.objects.unscoped().filter(pk=world.public.pk).update(data_version=world.public.data_version + 1)
    routed = through_route(tile(world.public), GZIP)
    assert routed.by_django  # the new version's tile is not cached yet


def test_a_tile_fetched_for_the_old_version_is_never_served_after_an_edit(world: World) -> None:
    """The route fetches the tile at the version it last saw together with the session; an edit moves on."""
    old = assert_same(tile(world.public), GZIP, route_answers=True)  # the route now guesses this version
    FeatureFactory(layer=world.public, geom=Point(-70.0, -30.0, srid=4326))
    Layer.objects.unscoped().filter(pk=world.public.pk).update(data_version=world.public.data_version + 1)
    new = assert_same(tile(world.public), GZIP, route_answers=True)  # warmed at the new version by Django
    assert new.body != old.body and new.headers["etag"] != old.headers["etag"]


def test_tiles_are_cached_per_layer(world: World) -> None:
    public = assert_same(tile(world.public), GZIP, route_answers=True)
    headers = {**GZIP, "cookie": session_cookie(world.owner)}
    private = assert_same(tile(world.private), headers, route_answers=True)
    assert public.headers["etag"] != private.headers["etag"]
    assert public.headers["cache-control"].startswith("public")
    assert private.headers["cache-control"].startswith("private")


def test_unknown_session_cookie_is_left_to_django(world: World) -> None:
    headers = {**GZIP, "cookie": "sessionid=no-such-session-key-anywhere"}
    answer = assert_same(tile(world.public), headers, route_answers=False)
    assert answer.status == 200
    assert "set-cookie" in answer.headers  # Django deletes the stale cookie; the route could not


# --- API tokens ---------------------------------------------------------------------------------


def _token(user: User, **fields: object) -> str:
    from apps.accounts.models import ApiToken
    from apps.accounts.services import api_token_create

    token, key = api_token_create(user=user, name="tiles")
    if fields:
        ApiToken.objects.filter(pk=token.pk).update(**fields)
    return key


@pytest.mark.parametrize("scheme", ["Token", "Bearer"])
def test_a_current_api_token_is_answered_by_the_route_like_the_view(world: World, scheme: str) -> None:
    headers = {**GZIP, "authorization": f"{scheme} {_token(world.owner)}"}
    answer = assert_same(tile(world.private), headers, route_answers=True)  # Django's pass records the use
    assert answer.status == 200 and answer.headers["cache-control"].startswith("private")


def test_a_token_whose_use_must_be_recorded_is_left_to_django_which_records_it(world: World) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from apps.accounts.models import ApiToken

    long_ago = timezone.now() - timedelta(hours=1)
    headers = {**GZIP, "authorization": f"Token {_token(world.owner, last_used_at=long_ago)}"}
    through_django(tile(world.private), {**GZIP})  # warm (as nobody: 404, nothing cached) ...
    assert_same(tile(world.private), headers, route_answers=True)  # ... Django's pass records the use
    assert ApiToken.objects.get(user=world.owner).last_used_at > long_ago


@pytest.mark.parametrize("problem", ["expired", "inactive", "with_session"])
def test_tokens_the_route_cannot_judge_alone_are_left_to_django(world: World, problem: str) -> None:
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    expires = {"expires_at": now - timedelta(minutes=1)} if problem == "expired" else {}
    key = _token(world.owner, last_used_at=now, **expires)
    headers = {**GZIP, "authorization": f"Token {key}"}
    if problem == "inactive":
        User.objects.filter(pk=world.owner.pk).update(is_active=False)
    if problem == "with_session":
        headers["cookie"] = session_cookie(world.viewer)
    through_django(tile(world.public), GZIP)  # the public tile is cached, so only the token decides
    routed = through_route(tile(world.public), headers)
    assert routed.by_django, problem


def test_behind_a_tls_proxy_the_route_adds_the_same_security_headers_and_leaves_redirects_to_django(
    world: World, settings
) -> None:
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    over_tls = {**GZIP, "x-forwarded-proto": "https"}

    through_django(tile(world.public), over_tls, fresh=True)  # warm
    routed, plain = (
        through_route(tile(world.public), over_tls),
        through_django(tile(world.public), over_tls, fresh=True),
    )
    assert (routed.status, routed.headers, routed.body) == (plain.status, plain.headers, plain.body)
    assert not routed.by_django
    assert routed.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains; preload"
    assert through_route(tile(world.public), GZIP).by_django  # plain http: Django's SecurityMiddleware redirects
    assert through_django(tile(world.public), GZIP, fresh=True).status == 301
