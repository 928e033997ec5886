"""Job progress pushed to websockets (DESIGN §8): to the owner's user group and the groups of the maps showing it.

Called by the job services; the push goes out on commit, so nobody hears of a
state that rolled back. Running reports are throttled per job and process (a
worker runs a job in one process at a time); every change of status is sent.
"""

from __future__ import annotations

import time
from uuid import UUID

from django.db import transaction

from apps.collaboration.broadcast import publish_job_progress
from apps.collaboration.protocol import JobProgress, out
from apps.jobs.models import Job, JobKind
from apps.maps.models import MapLayer

PUSH_INTERVAL_SECONDS = 0.5
# Kinds a map's other viewers see; an export is its requester's business alone.
SHARED_KINDS = frozenset({JobKind.IMPORT, JobKind.TILING, JobKind.ANALYSIS, JobKind.POSTER})
_MAX_TRACKED = 10_000

_last_push: dict[object, float] = {}


def _due(job_id: object, *, throttled: bool) -> bool:
    now = time.monotonic()
    if not throttled:
        _last_push.pop(job_id, None)
        return True
    if now - _last_push.get(job_id, float("-inf")) < PUSH_INTERVAL_SECONDS:
        return False
    if len(_last_push) >= _MAX_TRACKED:  # jobs that died without a final state
        _last_push.clear()
    _last_push[job_id] = now
    return True


def _map_ids(job: Job, layer_id: object) -> list[UUID]:
    """The maps showing the job's layer (everyone on them may see it), and the job's own map."""
    if job.kind not in SHARED_KINDS:
        return []
    map_ids: set[UUID] = set()
    if layer_id is not None:
        entries = MapLayer.objects.for_workspace(job.workspace_id).filter(layer_id=layer_id)
        map_ids.update(entries.values_list("map_id", flat=True))
    if job.map_id is not None:
        map_ids.add(job.map_id)
    return sorted(map_ids)


def job_progress_push(
    *,
    job: Job,
    status: str,
    progress: int,
    phase: str,
    error: str = "",
    layer_id: object = None,
    throttled: bool = False,
) -> None:
    """Schedule the push of one job state for when the current transaction commits (now, outside one).

    `throttled` (progress reports) drops a push within PUSH_INTERVAL_SECONDS of the last one for the job.
    """
    if not _due(job.pk, throttled=throttled):
        return
    layer_id = layer_id if layer_id is not None else job.layer_id
    message = out(
        JobProgress(
            job_id=str(job.pk),
            kind=job.kind,
            status=status,
            progress=progress,
            phase=phase,
            layer=str(layer_id) if layer_id is not None else None,
            map=str(job.map_id) if job.map_id is not None else None,
            error=error or None,
        )
    )
    transaction.on_commit(
        lambda: publish_job_progress(message, owner_id=job.created_by_id, map_ids=_map_ids(job, layer_id))
    )
