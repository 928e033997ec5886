"""The authorization matrix for `/ws/me/`, the signed-in person's own socket: who may connect, what each hears.

The socket takes no client messages; what it may leak is other people's jobs. Every signed-in actor
of tests/authz_world.py owns one running job, all started while every actor listens; each must hear
exactly their own. Cells: connect `open` or the close code; job `own` (exactly one's own job),
`nothing`, or `foreign` (someone else's job arrived); `-` where the socket was refused.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from channels.db import database_sync_to_async
from django.db import transaction

from apps.collaboration.tests.conftest import open_path, run
from apps.jobs import services
from apps.jobs.models import Job, JobKind
from apps.workspaces.tenancy import workspace_scope
from tests.authz_world import ACTORS, World, build_world

pytestmark = pytest.mark.django_db(transaction=True)

CONNECT, JOB = "connect", "job"

# fmt: off
POLICY: dict[str, str] = {
    #          own   adm   edi   vie   col   non   ano
    CONNECT:  "open  open  open  open  open  open  4401",
    JOB:      "own   own   own   own   own   own   -",
}
# fmt: on


@pytest.fixture
def world() -> Iterator[World]:
    with transaction.atomic():
        built = build_world()
    yield built


def _jobs_for(world: World) -> dict[str, Job]:
    """One import job per signed-in actor, on a layer of a map they may see (so map groups would hear it too)."""
    jobs = {}
    for actor, user in world.actors.items():
        if actor not in ACTORS or user is None:
            continue
        side = world.b if actor in ("collaborator", "non_member") else world.a
        layer = side.layers["workspace"]
        jobs[actor] = Job.objects.for_workspace(side.workspace.pk).create(
            workspace=side.workspace, kind=JobKind.IMPORT, layer=layer, created_by=user, phase="queued"
        )
    return jobs


def _start_all(jobs: dict[str, Job]) -> None:
    for job in jobs.values():
        with workspace_scope(job.workspace_id):
            services.job_start(job=job)


def test_each_person_hears_exactly_their_own_jobs_on_their_own_socket(world: World) -> None:
    jobs = _jobs_for(world)
    observed: dict[tuple[str, str], str] = {}

    async def scenario() -> None:
        sockets = {}
        for actor in ACTORS:
            socket, first = await open_path("/ws/me/", user=world.actors[actor])
            if first.get("type") == "ready":
                observed[(CONNECT, actor)], sockets[actor] = "open", socket
            else:
                observed[(CONNECT, actor)], observed[(JOB, actor)] = str(await socket.closed()), "-"
                await socket.disconnect()
        await database_sync_to_async(_start_all)(jobs)
        for actor, socket in sockets.items():
            heard = {m["job_id"] for m in await socket.drain() if m["type"] == "job"}
            own = {str(jobs[actor].pk)}
            observed[(JOB, actor)] = "own" if heard == own else ("foreign" if heard - own else "nothing")
            await socket.disconnect()

    run(scenario)
    mismatches = [
        f"{row} as {actor}: expected {cell}, got {observed[(row, actor)]}"
        for row, cells in POLICY.items()
        for actor, cell in zip(ACTORS, cells.split(), strict=True)
        if observed[(row, actor)] != cell
    ]
    assert not mismatches, "\n".join(mismatches)
