"""Revoking access closes the affected sockets (4403); lesser changes update permissions in place."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from apps.collaboration.tests.conftest import open_socket, run
from apps.maps.models import Grant, Visibility
from apps.workspaces.models import Role
from conftest import client_for
from tests.factories import CollaboratorFactory, MapFactory, MapLayerFactory, MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def private_map():
    map = MapFactory(visibility=Visibility.PRIVATE)
    admin = MembershipFactory(workspace=map.workspace, role=Role.ADMIN).user
    return map, admin


def test_removing_a_collaborator_closes_their_socket_and_only_theirs(private_map) -> None:
    map, admin = private_map
    guest = CollaboratorFactory(map=map, permission=Grant.EDIT)
    admin_client = client_for(admin)

    async def scenario() -> None:
        removed, _ = await open_socket(map.pk, user=guest.user)
        staying, _ = await open_socket(map.pk, user=admin)
        response = await sync_to_async(admin_client.delete)(f"/api/v1/maps/{map.pk}/collaborators/{guest.pk}/")
        assert response.status_code == 204
        assert await removed.closed(timeout=1) == 4403
        left = await staying.expect("presence.leave")
        assert left["user_id"] == guest.user_id
        assert staying.close_code is None
        await removed.disconnect()
        await staying.disconnect()

    run(scenario)


def test_demoting_an_editor_keeps_the_socket_but_refuses_the_next_edit() -> None:
    entry = MapLayerFactory(map__visibility=Visibility.WORKSPACE)
    map = entry.map
    owner = MembershipFactory(workspace=map.workspace, role=Role.OWNER).user
    editor = MembershipFactory(workspace=map.workspace, role=Role.EDITOR).user
    owner_client = client_for(owner)

    async def scenario() -> None:
        socket, state = await open_socket(map.pk, user=editor)
        assert "edit" in state["permissions"]
        response = await sync_to_async(owner_client.patch)(
            f"/api/v1/workspaces/{map.workspace.slug}/members/{editor.pk}/", {"role": "viewer"}, format="json"
        )
        assert response.status_code == 200, response.content
        assert (await socket.expect("permissions"))["permissions"] == ["comment", "view"]
        await socket.send(
            type="feature.create",
            client_msg_id="after",
            layer=str(entry.layer_id),
            geometry={"type": "Point", "coordinates": [1, 2]},
        )
        assert (await socket.expect("error"))["code"] == "forbidden"
        assert socket.close_code is None
        await socket.disconnect()

    run(scenario)


def test_removing_a_member_from_the_workspace_closes_their_socket() -> None:
    map = MapFactory(visibility=Visibility.WORKSPACE)
    owner = MembershipFactory(workspace=map.workspace, role=Role.OWNER).user
    leaving = MembershipFactory(workspace=map.workspace, role=Role.VIEWER)
    owner_client = client_for(owner)

    async def scenario() -> None:
        socket, _ = await open_socket(map.pk, user=leaving.user)
        response = await sync_to_async(owner_client.delete)(
            f"/api/v1/workspaces/{map.workspace.slug}/members/{leaving.user_id}/"
        )
        assert response.status_code == 204, response.content
        assert await socket.closed(timeout=1) == 4403
        await socket.disconnect()

    run(scenario)


def test_rotating_the_share_link_closes_sockets_opened_with_it() -> None:
    map = MapFactory(visibility=Visibility.PUBLIC)
    admin = MembershipFactory(workspace=map.workspace, role=Role.ADMIN).user
    admin_client = client_for(admin)

    async def scenario() -> None:
        by_link, _ = await open_socket(map.pk, query=f"share={map.share_token}")
        member, _ = await open_socket(map.pk, user=admin)
        response = await sync_to_async(admin_client.post)(f"/api/v1/maps/{map.pk}/share-token/rotate/")
        assert response.status_code == 200, response.content
        assert await by_link.closed(timeout=1) == 4403
        assert [m["type"] for m in await member.drain() if m["type"] != "event"] == []
        assert member.close_code is None
        await by_link.disconnect()
        await member.disconnect()

    run(scenario)


def test_making_a_public_map_private_closes_anonymous_sockets() -> None:
    map = MapFactory(visibility=Visibility.PUBLIC)
    admin = MembershipFactory(workspace=map.workspace, role=Role.ADMIN).user
    admin_client = client_for(admin)

    async def scenario() -> None:
        anonymous, _ = await open_socket(map.pk)
        response = await sync_to_async(admin_client.patch)(
            f"/api/v1/maps/{map.pk}/", {"visibility": "private"}, format="json"
        )
        assert response.status_code == 200, response.content
        assert await anonymous.closed(timeout=1) == 4403
        await anonymous.disconnect()

    run(scenario)


def test_deleting_a_map_closes_every_socket_on_it(private_map) -> None:
    map, admin = private_map
    guest = CollaboratorFactory(map=map, permission=Grant.VIEW)
    admin_client = client_for(admin)

    async def scenario() -> None:
        watcher, _ = await open_socket(map.pk, user=guest.user)
        response = await sync_to_async(admin_client.delete)(f"/api/v1/maps/{map.pk}/")
        assert response.status_code == 204
        assert await watcher.closed(timeout=1) in (4403, 4404)
        await watcher.disconnect()

    run(scenario)
