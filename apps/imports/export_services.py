"""Writes for exports: answer a small export now, or queue a large one (and every tile archive) as a Job (DESIGN §9)."""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from celery.exceptions import SoftTimeLimitExceeded
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import InterfaceError, OperationalError, transaction

from apps.accounts.models import User
from apps.core.errors import ApplicationError
from apps.imports.errors import ImportCancelled
from apps.imports.exports import FORMATS, TILE_PARAMS, ExportQuery, export_file_name, export_query, export_write
from apps.imports.progress import ProgressReporter
from apps.jobs.models import Job, JobKind
from apps.jobs.services import job_fail, job_start, job_succeed
from apps.layers.models import Layer
from apps.layers.selectors import layer_access
from apps.maps.permissions import LayerAction
from apps.maps.selectors import actor_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportedFile:
    """An export written for this request: an open file whose path is already gone (nothing to clean up)."""

    file: IO[bytes]
    name: str
    content_type: str


def export_now(*, layer: Layer, query: ExportQuery) -> ExportedFile:
    """Write a small export to a scratch directory and hand back the open file.

    The directory is removed at once: the open descriptor keeps the bytes until the response closes it.
    """
    assert not query.is_tile_archive, "tile archives are always a job"
    work = Path(tempfile.mkdtemp(prefix="meridian-export-"))
    try:
        path = export_write(layer, query, work / "out")
        handle = path.open("rb")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ExportedFile(file=handle, name=path.name, content_type=FORMATS[query.export_format].content_type)


def _job_params(layer: Layer, query: ExportQuery) -> dict[str, Any]:
    params: dict[str, Any] = {
        "layer": str(layer.pk),
        "format": query.export_format.value,
        "bbox": ",".join(str(v) for v in query.bbox) if query.bbox else None,
        "filters": query.filters,
    }
    if query.is_tile_archive:
        params["minzoom"], params["maxzoom"] = query.zooms
    return params


@transaction.atomic
def export_job_create(*, user: User, layer: Layer, query: ExportQuery) -> Job:
    """Queue an export as a Job (on commit; tile archives on the tiling queue); the caller checked the view right.

    A tile archive is planned first, so an empty selection or one past the tile limit is a 400 now.
    """
    if query.is_tile_archive:
        from apps.tiles.archives import archive_plan

        archive_plan(layer, query)
    job = Job.objects.for_workspace(layer.workspace_id).create(
        workspace_id=layer.workspace_id, kind=JobKind.EXPORT, params=_job_params(layer, query), created_by=user,
        layer=layer, phase="queued",
    )  # fmt: skip
    job_id, tile_archive = str(job.pk), query.is_tile_archive
    transaction.on_commit(lambda: _enqueue(job_id, tile_archive=tile_archive))
    return job


def _enqueue(job_id: str, *, tile_archive: bool) -> None:
    from apps.imports.tasks import export_enqueue

    export_enqueue(job_id, tile_archive=tile_archive)


def _query_again(job: Job) -> tuple[Layer, ExportQuery]:
    """The layer and the query, checked again: the user may have lost the right, the schema may have changed."""
    user = job.created_by
    if user is None or not user.is_active:
        raise ApplicationError("The person who asked for this export no longer has an account.")
    params = job.params
    try:
        access = layer_access(actor_for(user), params["layer"], action=LayerAction.VIEW)
    except ApplicationError:
        raise ApplicationError("The layer is gone, or you may no longer see it.") from None
    raw = {**params.get("filters", {}), "format": params["format"]}
    raw.update({name: str(params[name]) for name in ("bbox", *TILE_PARAMS) if params.get(name) is not None})
    return access.layer, export_query(access.layer, raw)


def _scratch_directory(job: Job) -> Path:
    """The job's own scratch directory, emptied first: a redelivered job starts clean."""
    work = Path(tempfile.gettempdir()) / f"meridian-export-{job.pk}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(mode=0o700)
    return work


def _write(job: Job, layer: Layer, query: ExportQuery, work: Path) -> tuple[Path, dict[str, Any]]:
    if not query.is_tile_archive:
        return export_write(layer, query, work), {}
    from apps.tiles.archives import write_tile_archive

    with ProgressReporter(job) as progress:
        path, tiles = write_tile_archive(layer, query, work, progress)
    # The version when tiling started: an edit made while tiling shows only in tiles rendered after it.
    details = {"tiles": tiles, "minzoom": query.zooms[0], "maxzoom": query.zooms[1], "data_version": layer.data_version}
    return path, details


def export_execute(*, job: Job, task_id: str = "") -> None:
    """Run an export job: write the file, store it as the job's output, mark the job succeeded.

    A redelivery of a finished job does nothing; a redelivery of an interrupted one writes the file
    again from scratch (the stored name is the job's, so it replaces nothing else). A tile archive
    reports its progress every second and stops when the job is cancelled.
    """
    claimed = job_start(job=job, task_id=task_id)
    if claimed is None:
        return
    work = _scratch_directory(claimed)
    try:
        layer, query = _query_again(claimed)
        path, details = _write(claimed, layer, query, work / "out")
        _store(claimed, path, query, details)
    except ApplicationError as exc:
        job_fail(job=claimed, error=exc.message)
    except ImportCancelled:
        logger.info("export %s cancelled", claimed.pk)
    except (OperationalError, InterfaceError):
        raise  # transient: the task retries
    except SoftTimeLimitExceeded:
        job_fail(job=claimed, error="The export took longer than its time limit.")
    except Exception:
        logger.exception("export %s failed", claimed.pk)
        job_fail(job=claimed, error="The export failed because of an internal error; it has been logged.")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _clear_stored(job: Job) -> None:
    """Remove what an interrupted attempt may have stored (it was never the job's output)."""
    directory = f"jobs/exports/{job.pk}"
    if default_storage.exists(directory):
        for name in default_storage.listdir(directory)[1]:
            default_storage.delete(f"{directory}/{name}")


def _store(job: Job, path: Path, query: ExportQuery, details: dict[str, Any]) -> None:
    _clear_stored(job)
    with path.open("rb") as handle:
        name = default_storage.save(f"jobs/exports/{job.pk}/{path.name}", File(handle))
    result = {"format": query.export_format.value, "file_name": path.name, "size": path.stat().st_size, **details}
    with transaction.atomic():
        Job.objects.for_workspace(job.workspace_id).filter(pk=job.pk).update(output_file=name)
        succeeded = job_succeed(job=job, result=result)
        if not succeeded:
            transaction.on_commit(lambda: default_storage.delete(name))  # cancelled meanwhile


__all__ = ["ExportedFile", "export_execute", "export_file_name", "export_job_create", "export_now"]
