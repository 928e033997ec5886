"""Writes for exports: answer a small export now, or queue a large one as a Job (DESIGN §9)."""

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
from apps.imports.exports import FORMATS, ExportQuery, export_file_name, export_query, export_write
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
    work = Path(tempfile.mkdtemp(prefix="meridian-export-"))
    try:
        path = export_write(layer, query, work / "out")
        handle = path.open("rb")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ExportedFile(file=handle, name=path.name, content_type=FORMATS[query.export_format].content_type)


def _job_params(layer: Layer, query: ExportQuery) -> dict[str, Any]:
    return {
        "layer": str(layer.pk),
        "format": query.export_format.value,
        "bbox": ",".join(str(v) for v in query.bbox) if query.bbox else None,
        "filters": query.filters,
    }


@transaction.atomic
def export_job_create(*, user: User, layer: Layer, query: ExportQuery) -> Job:
    """Queue a large export as a Job (on commit, on the imports queue); the caller checked the view right."""
    job = Job.objects.for_workspace(layer.workspace_id).create(
        workspace_id=layer.workspace_id, kind=JobKind.EXPORT, params=_job_params(layer, query), created_by=user,
        layer=layer, phase="queued",
    )  # fmt: skip
    job_id = str(job.pk)
    transaction.on_commit(lambda: _enqueue(job_id))
    return job


def _enqueue(job_id: str) -> None:
    from apps.imports.tasks import export_enqueue

    export_enqueue(job_id)


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
    if params.get("bbox"):
        raw["bbox"] = params["bbox"]
    return access.layer, export_query(access.layer, raw)


def export_execute(*, job: Job, task_id: str = "") -> None:
    """Run an export job: write the file, store it as the job's output, mark the job succeeded.

    A redelivery of a finished job does nothing; a redelivery of an interrupted one writes the file
    again from scratch (the stored name is the job's, so it replaces nothing else).
    """
    claimed = job_start(job=job, task_id=task_id)
    if claimed is None:
        return
    work = Path(tempfile.mkdtemp(prefix="meridian-export-"))
    try:
        layer, query = _query_again(claimed)
        path = export_write(layer, query, work / "out")
        _store(claimed, path, query)
    except ApplicationError as exc:
        job_fail(job=claimed, error=exc.message)
    except (OperationalError, InterfaceError):
        raise  # transient: the task retries
    except SoftTimeLimitExceeded:
        job_fail(job=claimed, error="The export took longer than its time limit.")
    except Exception:
        logger.exception("export %s failed", claimed.pk)
        job_fail(job=claimed, error="The export failed because of an internal error; it has been logged.")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _store(job: Job, path: Path, query: ExportQuery) -> None:
    with path.open("rb") as handle:
        name = default_storage.save(f"jobs/exports/{job.pk}/{path.name}", File(handle))
    result = {"format": query.export_format.value, "file_name": path.name, "size": path.stat().st_size}
    with transaction.atomic():
        Job.objects.for_workspace(job.workspace_id).filter(pk=job.pk).update(output_file=name)
        succeeded = job_succeed(job=job, result=result)
        if not succeeded:
            transaction.on_commit(lambda: default_storage.delete(name))  # cancelled meanwhile


__all__ = ["ExportedFile", "export_execute", "export_file_name", "export_job_create", "export_now"]
