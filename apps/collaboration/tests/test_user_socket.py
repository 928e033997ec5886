"""`/ws/me/`: a signed-in person's own job progress, for pages without a map."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from apps.collaboration.broadcast import user_group
from apps.collaboration.tests.conftest import api_token, open_path, run
from apps.jobs import services
from apps.jobs.models import Job, JobKind
from apps.workspaces.models import Role
from apps.workspaces.tenancy import workspace_scope
from tests.factories import MapLayerFactory, MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _start(job: Job) -> None:
    with workspace_scope(job.workspace_id):
        services.job_start(job=job)


def _job_of(user, entry, kind: str = JobKind.IMPORT) -> Job:
    return Job.objects.for_workspace(entry.workspace_id).create(
        workspace_id=entry.workspace_id, kind=kind, layer=entry.layer, created_by=user, phase="queued"
    )


def test_a_signed_in_person_hears_of_their_own_jobs_and_of_nobody_elses() -> None:
    entry = MapLayerFactory()
    me = MembershipFactory(workspace=entry.map.workspace, role=Role.EDITOR).user
    colleague = MembershipFactory(workspace=entry.map.workspace, role=Role.EDITOR).user
    mine, theirs = _job_of(me, entry, JobKind.EXPORT), _job_of(colleague, entry)

    async def scenario() -> None:
        socket, ready = await open_path("/ws/me/", user=me)
        assert ready == {"type": "ready", "user_id": me.pk}
        await database_sync_to_async(_start)(theirs)  # on a map layer, but /ws/me/ is not a map socket
        await database_sync_to_async(_start)(mine)
        jobs = [m for m in await socket.drain() if m["type"] == "job"]
        assert [(m["job_id"], m["kind"], m["status"]) for m in jobs] == [(str(mine.pk), "export", "running")]
        await socket.disconnect()

    run(scenario)


def test_nobody_signed_in_and_unknown_tokens_are_refused_and_scripts_need_no_origin() -> None:
    user = MembershipFactory().user
    key = api_token(user)

    async def scenario() -> None:
        for token in (None, "not-a-token"):
            socket, first = await open_path("/ws/me/", token=token)
            assert first == {} and await socket.closed() == 4401
            await socket.disconnect()
        script, ready = await open_path("/ws/me/", token=key, origin=None)
        assert ready["user_id"] == user.pk
        await script.disconnect()
        cookie, first = await open_path("/ws/me/", user=user, origin=b"https://evil.example")
        assert first == {} and cookie.close_code is not None  # refused at the handshake
        await cookie.disconnect()

    run(scenario)


def test_the_socket_only_listens_and_survives_messages_meant_for_map_sockets() -> None:
    entry = MapLayerFactory()
    me = MembershipFactory(workspace=entry.map.workspace, role=Role.EDITOR).user
    job = _job_of(me, entry)

    async def scenario() -> None:
        socket, _ = await open_path("/ws/me/", user=me)
        await socket.send(type="hello", last_seq=0)
        assert (await socket.expect("error"))["code"] == "unknown_type"
        await get_channel_layer().group_send(user_group(me.pk), {"type": "access.changed", "map_id": "x"})
        await database_sync_to_async(_start)(job)
        assert (await socket.expect("job"))["job_id"] == str(job.pk)
        await socket.disconnect()

    run(scenario)
