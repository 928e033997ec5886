"""Job progress reaches its owner's sockets and the sockets of the maps showing its layer, and nobody else."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import transaction

from apps.accounts.models import User
from apps.collaboration.tests.conftest import Socket, open_socket, run
from apps.jobs import services
from apps.jobs.models import Job, JobKind
from apps.layers.models import Layer
from apps.maps.models import Map
from apps.workspaces.models import Role
from apps.workspaces.tenancy import workspace_scope
from tests.factories import MapFactory, MapLayerFactory, MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class Scene:
    map: Map  # shows the job's layer
    layer: Layer
    other_map: Map  # same workspace, does not show it
    foreign_map: Map  # another workspace
    owner: User
    colleague: User
    outsider: User


@pytest.fixture
def scene() -> Scene:
    entry = MapLayerFactory()
    map = entry.map
    owner = MembershipFactory(workspace=map.workspace, role=Role.EDITOR).user
    colleague = MembershipFactory(workspace=map.workspace, role=Role.EDITOR).user
    foreign = MapFactory()
    outsider = MembershipFactory(workspace=foreign.workspace, role=Role.EDITOR).user
    return Scene(map, entry.layer, MapFactory(workspace=map.workspace), foreign, owner, colleague, outsider)


def _job(scene: Scene, kind: str = JobKind.IMPORT) -> Job:
    return Job.objects.for_workspace(scene.map.workspace_id).create(
        workspace_id=scene.map.workspace_id, kind=kind, layer=scene.layer, created_by=scene.owner, phase="queued"
    )


def _in_scope(job: Job, work: Callable[[Job], Any]) -> Any:
    with workspace_scope(job.workspace_id):
        return work(job)


async def _jobs(socket: Socket) -> list[dict[str, Any]]:
    return [message for message in await socket.drain() if message["type"] == "job"]


def _states(messages: list[dict[str, Any]]) -> list[tuple[str, int, str, str | None]]:
    return [(m["status"], m["progress"], m["phase"], m["error"]) for m in messages]


def test_progress_and_failure_reach_the_owner_everywhere_and_the_maps_clients_once_without_the_error(scene) -> None:
    job = _job(scene)

    def work(job: Job) -> None:
        job = services.job_start(job=job, task_id="t1")
        services.job_report(job=job, phase="reading", progress=40)
        services.job_report(job=job, phase="reading", progress=45)  # within the throttle window: not pushed
        services.job_fail(job=job, error="Line 3 is not GeoJSON.")

    async def scenario() -> None:
        sockets = {
            "owner_here": (scene.map, scene.owner),
            "owner_elsewhere": (scene.other_map, scene.owner),
            "colleague": (scene.map, scene.colleague),
            "colleague_elsewhere": (scene.other_map, scene.colleague),
            "outsider": (scene.foreign_map, scene.outsider),
        }
        opened = {name: (await open_socket(map.pk, user=user))[0] for name, (map, user) in sockets.items()}
        await database_sync_to_async(_in_scope)(job, work)
        seen = {name: await _jobs(socket) for name, socket in opened.items()}
        owners = [("running", 0, "queued", None), ("running", 40, "reading", None)]
        owners.append(("failed", 45, "failed", "Line 3 is not GeoJSON."))  # the last progress written
        assert _states(seen["owner_here"]) == owners  # once, though both of its groups heard it
        assert _states(seen["owner_elsewhere"]) == owners
        assert _states(seen["colleague"]) == [*owners[:2], ("failed", 45, "failed", None)]
        assert seen["colleague_elsewhere"] == [] and seen["outsider"] == []
        first = seen["colleague"][0]
        assert (first["job_id"], first["kind"], first["layer"]) == (str(job.pk), "import", str(scene.layer.pk))
        for socket in opened.values():
            await socket.disconnect()

    run(scenario)


def test_success_is_pushed_on_commit_and_a_rolled_back_success_never(scene) -> None:
    job = _job(scene)

    def succeed_then_roll_back(job: Job) -> None:
        job = services.job_start(job=job)
        with pytest.raises(RuntimeError), transaction.atomic():
            assert services.job_succeed(job=job, result={"features": 3})
            raise RuntimeError("the import's own work failed after marking the job")

    def succeed(job: Job) -> None:
        with transaction.atomic():
            assert services.job_succeed(job=job, result={"features": 3})

    async def scenario() -> None:
        colleague, _ = await open_socket(scene.map.pk, user=scene.colleague)
        await database_sync_to_async(_in_scope)(job, succeed_then_roll_back)
        assert [m["status"] for m in await _jobs(colleague)] == ["running"]
        await database_sync_to_async(_in_scope)(job, succeed)
        assert _states(await _jobs(colleague)) == [("succeeded", 100, "done", None)]
        await colleague.disconnect()

    run(scenario)


def test_a_cancelled_job_is_pushed_and_an_export_reaches_only_its_owner(scene) -> None:
    job = _job(scene)
    export = _job(scene, kind=JobKind.EXPORT)

    def work(job: Job) -> None:
        services.job_cancel(job=job)
        services.job_start(job=export)

    async def scenario() -> None:
        owner, _ = await open_socket(scene.map.pk, user=scene.owner)
        colleague, _ = await open_socket(scene.map.pk, user=scene.colleague)
        await database_sync_to_async(_in_scope)(job, work)
        assert [(m["job_id"], m["status"]) for m in await _jobs(colleague)] == [(str(job.pk), "cancelled")]
        assert [(m["kind"], m["status"]) for m in await _jobs(owner)] == [
            ("import", "cancelled"),
            ("export", "running"),
        ]
        await owner.disconnect()
        await colleague.disconnect()

    run(scenario)


def test_anonymous_visitors_of_a_public_map_see_its_layers_jobs(scene) -> None:
    Map.objects.unscoped().filter(pk=scene.map.pk).update(visibility="public")
    job = _job(scene)

    async def scenario() -> None:
        visitor, _ = await open_socket(scene.map.pk, query=f"share={scene.map.share_token}")
        await database_sync_to_async(_in_scope)(job, lambda job: services.job_start(job=job))
        assert _states(await _jobs(visitor)) == [("running", 0, "queued", None)]
        await visitor.disconnect()

    run(scenario)
