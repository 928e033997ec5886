"""Who may open the map socket: cookie, token, anonymous on public maps only, origin checked."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings

from apps.collaboration.tests.conftest import ORIGIN, api_token, open_socket, run
from apps.maps.models import Visibility
from apps.workspaces.models import Role
from tests.factories import MapFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_member_connects_with_the_session_cookie_and_is_told_who_is_here() -> None:
    map = MapFactory()
    editor = MembershipFactory(workspace=map.workspace, role=Role.EDITOR).user

    async def scenario() -> None:
        socket, state = await open_socket(map.pk, user=editor)
        assert state["type"] == "presence.state"
        assert state["you"]["user_id"] == editor.pk
        assert state["you"]["name"] == editor.display_name
        assert state["you"]["role"] == "editor"
        assert state["you"]["colour"].startswith("#")
        assert [m["user_id"] for m in state["members"]] == [editor.pk]
        assert set(state["permissions"]) == {"view", "comment", "edit"}
        assert state["last_seq"] == 0
        await socket.disconnect()

    run(scenario)


def test_script_connects_with_an_api_token_header() -> None:
    map = MapFactory()
    viewer = MembershipFactory(workspace=map.workspace, role=Role.VIEWER).user
    key = api_token(viewer)

    async def scenario() -> None:
        socket, state = await open_socket(map.pk, token=key)
        assert state["you"]["user_id"] == viewer.pk
        assert set(state["permissions"]) == {"view", "comment"}
        await socket.disconnect()

    run(scenario)


def test_an_unknown_map_closes_with_4404() -> None:
    user = UserFactory()

    async def scenario() -> None:
        socket, _ = await open_socket(uuid.uuid4(), user=user)
        assert await socket.closed() == 4404
        await socket.disconnect()

    run(scenario)


def test_a_map_the_user_cannot_see_closes_with_the_same_4404() -> None:
    map = MapFactory(visibility=Visibility.PRIVATE)
    member = MembershipFactory(workspace=map.workspace, role=Role.EDITOR).user  # not its creator
    outsider = UserFactory()

    async def scenario() -> None:
        for user in (member, outsider):
            socket, state = await open_socket(map.pk, user=user)
            assert state == {}
            assert await socket.closed() == 4404
            await socket.disconnect()

    run(scenario)


def test_anonymous_visitors_are_refused_on_workspace_maps() -> None:
    map = MapFactory(visibility=Visibility.WORKSPACE)

    async def scenario() -> None:
        socket, _ = await open_socket(map.pk)
        assert await socket.closed() == 4404
        await socket.disconnect()

    run(scenario)


def test_anonymous_visitors_watch_a_public_map_read_only_and_unseen() -> None:
    map = MapFactory(visibility=Visibility.PUBLIC)

    async def scenario() -> None:
        socket, state = await open_socket(map.pk, query=f"share={map.share_token}")
        assert state["you"] is None
        assert state["permissions"] == ["view"]
        await socket.send(type="cursor", lng=24.9, lat=60.1)
        assert (await socket.expect("error"))["code"] == "forbidden"
        await socket.send(type="comment.create", client_msg_id="c1", body="hello")
        error = await socket.expect("error")
        assert (error["code"], error["client_msg_id"]) == ("forbidden", "c1")
        await socket.disconnect()

    run(scenario)


def test_a_share_link_that_is_not_current_is_refused() -> None:
    map = MapFactory(visibility=Visibility.PUBLIC)

    async def scenario() -> None:
        socket, _ = await open_socket(map.pk, query="share=not-the-token")
        assert await socket.closed() == 4404
        await socket.disconnect()

    run(scenario)


def test_a_foreign_origin_is_refused_before_the_consumer_runs() -> None:
    assert settings.DEBUG is False  # with DEBUG, AllowedHostsOriginValidator would also allow localhost
    map = MapFactory()
    editor = MembershipFactory(workspace=map.workspace, role=Role.EDITOR).user

    async def scenario() -> None:
        socket, state = await open_socket(map.pk, user=editor, origin=b"https://evil.example")
        assert state == {}
        assert socket.close_code is not None  # refused at the handshake: never accepted
        ok, _ = await open_socket(map.pk, user=editor, origin=b"http://testserver")
        assert ok.close_code is None
        await ok.disconnect()

    run(scenario)


def test_a_script_with_an_api_token_connects_without_an_origin_and_any_cookie_it_sends_is_ignored() -> None:
    assert settings.DEBUG is False
    map = MapFactory()
    editor = MembershipFactory(workspace=map.workspace, role=Role.EDITOR).user
    admin = MembershipFactory(workspace=map.workspace, role=Role.ADMIN).user
    key = api_token(editor)

    async def scenario() -> None:
        socket, state = await open_socket(map.pk, token=key, origin=None)
        assert state["you"]["user_id"] == editor.pk
        await socket.disconnect()
        # Without an Origin only the token speaks: an admin's cookie alongside it grants nothing.
        mixed, state = await open_socket(map.pk, token=key, user=admin, origin=None)
        assert (state["you"]["user_id"], state["you"]["role"]) == (editor.pk, "editor")
        await mixed.disconnect()

    run(scenario)


def test_a_session_cookie_without_an_origin_is_refused_at_the_handshake() -> None:
    assert settings.DEBUG is False
    map = MapFactory(visibility=Visibility.PUBLIC)
    editor = MembershipFactory(workspace=map.workspace, role=Role.EDITOR).user

    async def scenario() -> None:
        for user in (editor, None):  # a cookie, or nothing at all: neither is a script with a token
            socket, state = await open_socket(map.pk, user=user, origin=None, query=f"share={map.share_token}")
            assert state == {}
            assert socket.close_code is not None  # never accepted
            await socket.disconnect()

    run(scenario)


def test_a_token_does_not_excuse_a_foreign_origin() -> None:
    assert settings.DEBUG is False
    map = MapFactory()
    key = api_token(MembershipFactory(workspace=map.workspace, role=Role.EDITOR).user)

    async def scenario() -> None:
        socket, state = await open_socket(map.pk, token=key, origin=b"https://evil.example")
        assert state == {} and socket.close_code is not None
        await socket.disconnect()

    run(scenario)


def test_an_unknown_token_closes_with_4401_instead_of_falling_back_to_the_cookie() -> None:
    map = MapFactory()
    editor = MembershipFactory(workspace=map.workspace, role=Role.EDITOR).user

    async def scenario() -> None:
        for origin, user in ((None, None), (ORIGIN, editor)):
            socket, state = await open_socket(map.pk, token="not-a-token", user=user, origin=origin)
            assert state == {}
            assert await socket.closed() == 4401
            await socket.disconnect()

    run(scenario)
