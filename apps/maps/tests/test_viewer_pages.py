"""The map viewer pages: /maps/<id>/ for people with access, /m/<share_token> for public maps."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from apps.accounts.models import User
from apps.maps.models import Map, Visibility
from apps.maps.selectors import actor_for
from apps.maps.services import map_share_token_rotate
from apps.workspaces.models import Role
from tests.factories import LayerFactory, MapFactory, MapLayerFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

STYLE = {"type": "categorized", "property": "kind", "color": "#123456", "stops": [{"value": "a", "color": "#ff0000"}]}
# Any absolute URL in the page; the only one allowed is the SVG namespace, which is never fetched.
ABSOLUTE_URL = re.compile(r"""(?:https?:)?//[^\s"'<>]+""")


def _map(visibility: str = Visibility.WORKSPACE) -> Map:
    map = MapFactory(visibility=visibility)
    layer = LayerFactory(workspace=map.workspace, name="Shops", style_config=STYLE)
    MapLayerFactory(map=map, layer=layer, opacity=0.5, is_visible=False)
    return map


def _client(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _member(map: Map, role: str = Role.VIEWER) -> User:
    return MembershipFactory(workspace=map.workspace, role=role).user


def _config(html: str) -> dict:
    found = re.search(r'<script id="viewer-config" type="application/json">(.*?)</script>', html, re.S)
    assert found, "the page embeds its viewer config"
    return json.loads(found.group(1))


def test_a_member_sees_the_viewer_with_the_maps_layers_and_their_styles() -> None:
    map = _map()
    response = _client(_member(map)).get(f"/maps/{map.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "vendor/maplibre-gl/maplibre-gl.js" in html and "js/viewer.js" in html
    config = _config(html)
    assert config["center"] == [pytest.approx(24.94), pytest.approx(60.17)]
    assert config["basemap_style"] == "/basemap/style/openmaptiles.json"
    assert config["share_token"] is None
    [layer] = config["layers"]
    assert layer["name"] == "Shops" and layer["style"]["stops"][0]["color"] == "#ff0000"
    assert (layer["visible"], layer["opacity"]) == (False, 0.5)
    assert layer["tilejson"] == f"/tiles/layers/{layer['id']}.json"


def test_the_viewer_is_a_404_for_outsiders_and_anonymous_visitors() -> None:
    map = _map()
    assert _client(UserFactory()).get(f"/maps/{map.pk}/").status_code == 404
    assert _client(None).get(f"/maps/{map.pk}/").status_code == 404
    assert _client(_member(map)).get("/maps/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_a_private_map_is_a_404_for_a_workspace_viewer_who_did_not_make_it() -> None:
    map = _map(Visibility.PRIVATE)
    assert _client(_member(map)).get(f"/maps/{map.pk}/").status_code == 404
    assert _client(_member(map, Role.ADMIN)).get(f"/maps/{map.pk}/").status_code == 200


def test_anyone_opens_a_public_map_by_its_share_link_and_requests_carry_the_token() -> None:
    map = _map(Visibility.PUBLIC)
    response = _client(None).get(f"/m/{map.share_token}")
    assert response.status_code == 200
    assert "Public view" in response.content.decode()
    assert _config(response.content.decode())["share_token"] == map.share_token


def test_a_share_link_of_a_map_that_is_not_public_is_a_404() -> None:
    map = _map(Visibility.WORKSPACE)
    assert _client(None).get(f"/m/{map.share_token}").status_code == 404
    assert _client(_member(map)).get(f"/m/{map.share_token}").status_code == 404


def test_a_rotated_share_link_is_a_404_and_the_new_one_works() -> None:
    map = _map(Visibility.PUBLIC)
    owner = _member(map, Role.OWNER)
    old_token = map.share_token
    map = map_share_token_rotate(actor=actor_for(owner), user=owner, map=map)
    assert _client(None).get(f"/m/{old_token}").status_code == 404
    assert _client(None).get(f"/m/{map.share_token}").status_code == 200


def test_the_tilejson_the_public_page_asks_for_answers_to_the_share_token() -> None:
    map = _map(Visibility.PUBLIC)
    [layer] = _config(_client(None).get(f"/m/{map.share_token}").content.decode())["layers"]
    response = _client(None).get(layer["tilejson"], {"share_token": map.share_token})
    assert response.status_code == 200
    assert "share_token=" + map.share_token in response.json()["tiles"][0]


@pytest.mark.parametrize("public", [False, True])
def test_the_page_loads_nothing_from_other_origins(public: bool) -> None:
    map = _map(Visibility.PUBLIC)
    client = _client(None) if public else _client(_member(map))
    html = client.get(f"/m/{map.share_token}" if public else f"/maps/{map.pk}/").content.decode()
    assert ABSOLUTE_URL.findall(html) == []
