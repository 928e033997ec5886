"""Writes for imports: accept an upload as a job (web), and run the job (worker).

The worker's pipeline (DESIGN §9), each phase reported on the Job:

    reading     archive checks + member-by-member extraction, content checks, ogr2ogr → staging table
    validating  range check (a wrong CRS), repair to the layer's family, counts per reason, schema
    loading     one transaction: create / lock the layer, (delete,) INSERT … SELECT, refresh the layer,
    indexing    and mark the job succeeded — so the layer changes completely or not at all.

A multi-layer source (selection.py) stages and validates each chosen layer in turn, then
loads them all in that one transaction: the job's layers appear together or none does.

Scratch tables are named after the job and dropped at the end, on failure and on
cancellation; a retry of the same job drops what a killed attempt left.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction

from apps.accounts.models import User
from apps.collaboration.services import map_events_append
from apps.core.errors import ApplicationError
from apps.imports import gdal, loading, preparation, remote, results, safety, selection
from apps.imports.errors import ImportCancelled, ImportRefused
from apps.imports.progress import ProgressReporter
from apps.imports.selectors import epsg_known, import_target, layer_locked
from apps.imports.types import ImportMode, ImportParams, LayerResult
from apps.imports.uploads import StoredUpload, import_directory
from apps.jobs.models import Job, JobKind
from apps.jobs.services import job_fail, job_start, job_succeed
from apps.layers import storage
from apps.layers.models import GeometryType, Layer
from apps.layers.selectors import layer_access
from apps.layers.services import layer_create
from apps.maps.permissions import Actor, LayerAction
from apps.maps.selectors import actor_for
from apps.workspaces.models import Workspace

logger = logging.getLogger(__name__)
TRANSIENT_ERRORS = (OperationalError, InterfaceError)
MAX_ATTEMPTS = 3  # a file that kills the worker every time (out of memory) is not retried forever


# --- web: accept an upload ---------------------------------------------------------------------


@dataclass(frozen=True)
class ImportInput:
    workspace: str
    mode: ImportMode
    layer: UUID | None = None
    name: str = ""
    source_layer: str | None = None
    srid: int | None = None
    key: str | None = None
    delete_missing: bool = False
    url: str | None = None  # instead of an upload: fetched by the worker
    url_format: str | None = None
    layers: list[str] | None = None  # several source layers, or ["*"]: one new layer each


def _checked_upload(upload: StoredUpload | None) -> str:
    """Refuse a missing, misnamed or disguised file now, in the request; return its format key."""
    if upload is None:
        raise ImportRefused("Required: the file to import (multipart field 'file'), or a url.", field="file")
    safety.refuse_gdal_prefixes(upload.name, field="file")
    suffix = Path(upload.name.lower()).suffix
    if suffix in safety.ARCHIVE_EXTENSIONS:
        safety.archive_members(upload.path)  # the central directory only: milliseconds
        return "archive"
    source_format = safety.format_for_name(upload.name)
    if source_format is None or source_format.key == "shapefile":
        hint = " Zip a Shapefile with its .dbf, .shx and .prj." if suffix == ".shp" else ""
        raise ImportRefused(
            f"Files of this type cannot be imported.{hint} Accepted: {', '.join(safety.accepted_extensions())}.",
            field="file",
        )
    safety.check_content(upload.path, source_format)
    return source_format.key


def _checked_input(data: ImportInput) -> list[str] | None:
    """Refuse inconsistent options; return the source layers asked for, if several may be."""
    if data.mode == ImportMode.NEW and not data.name.strip():
        raise ApplicationError("Required for a new layer.", field="name")
    if data.mode == ImportMode.UPSERT and not (data.key or "").strip():
        raise ApplicationError("Required to upsert: the attribute that identifies a feature.", field="key")
    if data.mode != ImportMode.UPSERT and (data.key or data.delete_missing):
        raise ApplicationError("Only an upsert matches features by key.", field="key")
    if data.srid is not None and not epsg_known(data.srid):
        raise ApplicationError(f"EPSG:{data.srid} is not a coordinate reference system PostGIS knows.", field="srid")
    return selection.checked_layer_request(
        mode=data.mode, source_layer=data.source_layer, layers=data.layers, source_format=None
    )


@transaction.atomic
def import_create(
    *, actor: Actor, user: User, data: ImportInput, upload: StoredUpload | None, job_id: UUID, enqueue: bool = True
) -> Job:
    """Check who imports what where, check the file, and queue the job (on commit) on the imports queue.

    Authorisation comes first, so a viewer learns nothing about their file's validity.
    `enqueue=False` leaves the job for the caller to run in-process (the import_file command).
    """
    workspace, access = import_target(actor, workspace_slug=data.workspace, mode=data.mode, layer_id=data.layer)
    layers = _checked_input(data)
    url_name = remote.url_checked(url=data.url, url_format=data.url_format, upload=upload)
    file_format = _checked_upload(upload) if url_name is None else data.url_format
    if upload is not None and file_format != "archive":  # an archive's dataset is checked once extracted
        source_format = safety.format_for_name(upload.name)
        assert source_format is not None
        selection.refuse_layers_of_single_layer_format(layers, source_format, field="layers")
    params: ImportParams = {
        "mode": data.mode.value,
        "layer": str(access.layer.pk) if access else None,
        "name": data.name.strip(),
        "source_layer": data.source_layer,
        "layers": layers,
        "srid": data.srid,
        "file_name": (upload.name if upload else url_name or "")[:255],
        "file_path": str(upload.path.relative_to(Path(settings.MEDIA_ROOT))) if upload else "",
        "file_size": upload.size if upload else 0,
        "url": data.url,
        "url_format": data.url_format,
        "key": data.key.strip() if data.key else None,
        "delete_missing": data.delete_missing,
    }
    job = Job.objects.for_workspace(workspace).create(
        id=job_id,
        workspace=workspace,
        kind=JobKind.IMPORT,
        params={**params, "format": file_format},
        created_by=user,
        layer=access.layer if access else None,
        phase="queued",
    )
    if enqueue:
        transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def _enqueue(job_id: UUID) -> None:
    from apps.imports.tasks import import_enqueue

    import_enqueue(str(job_id))


# --- worker: run the job ---------------------------------------------------------------------------


def import_execute(*, job: Job, task_id: str = "") -> None:
    """Run an import job to its end: succeeded, failed (with a reason) or cancelled, leaving no scratch behind.

    Transient database errors propagate (the task retries them) and keep the upload
    for the retry; every other outcome removes the job's files.
    """
    claimed = job_start(job=job, task_id=task_id)
    if claimed is None:
        return  # finished already: a redelivered message, or cancelled before it started
    keep_files = False
    try:
        if claimed.attempts > MAX_ATTEMPTS:
            raise ImportRefused(f"The import was interrupted {MAX_ATTEMPTS} times; giving up.")
        with ProgressReporter(claimed) as progress:
            _run(claimed, progress)
    except ImportRefused as exc:
        job_fail(job=claimed, error=exc.message)
    except ImportCancelled:
        logger.info("import %s cancelled", claimed.pk)
    except TRANSIENT_ERRORS:
        keep_files = True
        raise
    except SoftTimeLimitExceeded:
        job_fail(job=claimed, error="The import took longer than its time limit.")
    except Exception:
        logger.exception("import %s failed", claimed.pk)
        job_fail(job=claimed, error="The import failed because of an internal error; it has been logged.")
    finally:
        loading.job_tables_drop(claimed.pk)
        if not keep_files:
            safety.remove_tree(import_directory(claimed.pk))


def import_abandon(*, job: Job, error: str) -> None:
    """Give up on a job after its last retry: fail it and remove its files and scratch tables."""
    loading.job_tables_drop(job.pk)
    safety.remove_tree(import_directory(job.pk))
    job_fail(job=job, error=error)


@dataclass(frozen=True)
class Source:
    path: Path
    source_format: safety.SourceFormat
    layers: list[selection.SelectedLayer]


def _source(job: Job, params: ImportParams, work: Path) -> Source:
    """The dataset to read: the upload itself, or the one dataset extracted from its archive, content-checked."""
    upload = Path(settings.MEDIA_ROOT) / params["file_path"]
    if upload.suffix in safety.ARCHIVE_EXTENSIONS:
        path, source_format = safety.dataset_in(safety.archive_extract(upload, work / "extracted"))
    else:
        path, source_format = upload, safety.format_for_name(upload.name)
    if source_format is None:
        raise ImportRefused("Files of this type cannot be imported.")
    safety.check_content(path, source_format)
    return Source(path=path, source_format=source_format, layers=_layers_to_read(path, source_format, params, work))


def _layers_to_read(
    path: Path, source_format: safety.SourceFormat, params: ImportParams, work: Path
) -> list[selection.SelectedLayer]:
    if not source_format.multi_layer:
        selection.refuse_layers_of_single_layer_format(params.get("layers"), source_format, field="layers")
        return [selection.SelectedLayer(name=None, optional=False)]
    found = gdal.layers_of(path, source_format, tmp=work, timeout=_read_timeout())
    return selection.layers_to_read(
        found, source_format=source_format, source_layer=params["source_layer"], layers=params.get("layers"),
        single=ImportMode(params["mode"]) != ImportMode.NEW,
    )  # fmt: skip


def _read_timeout() -> float:
    return float(getattr(settings, "IMPORT_READ_TIMEOUT_SECONDS", 30 * 60))


def _work_directory(job: Job) -> Path:
    work = import_directory(job.pk) / "work"
    safety.remove_tree(work)  # a previous attempt's leftovers
    work.mkdir(parents=True)
    return work


def _percent(part: int, parts: int, fraction: float) -> int:
    """Reading and validating share 5 to 75 %, split evenly between the source layers."""
    return 5 + int(70 * (part + fraction) / parts)


def _stage(
    source: Source, selected: selection.SelectedLayer, params: ImportParams, progress: ProgressReporter,
    tables: loading.StagingTables, *, work: Path, part: int,
) -> None:  # fmt: skip
    parts = len(source.layers)

    def on_progress(percent: int) -> bool:
        progress.set("reading", _percent(part, parts, 0.8 * percent / 100))
        return not progress.cancel_requested

    request = gdal.StageRequest(
        path=source.path, source_format=source.source_format, table=tables.staging, layer=selected.name,
        srid=params["srid"], tmp=work, timeout=_read_timeout(),
    )  # fmt: skip
    tables.drop()
    try:
        gdal.stage(request, on_progress=on_progress)
    except gdal.StageCancelled:
        raise ImportCancelled() from None


def _run(job: Job, progress: ProgressReporter) -> None:
    params: ImportParams = job.params  # type: ignore[assignment]
    mode = ImportMode(params["mode"])
    if params.get("url"):
        params = _fetched(job, params, progress)
    progress.set("reading", 2)
    work = _work_directory(job)
    source = _source(job, params, work)
    progress.check_cancelled()
    target = preparation.Target(
        layer=_target_layer(job, params, mode), keeps_features=mode in (ImportMode.APPEND, ImportMode.UPSERT),
        key=params.get("key") if mode == ImportMode.UPSERT else None,
    )  # fmt: skip
    prepared: list[preparation.PreparedLayer] = []
    for part, selected in enumerate(source.layers):
        tables = loading.StagingTables.for_job(job.pk, part)
        _stage(source, selected, params, progress, tables, work=work, part=part)
        progress.check_cancelled()
        progress.set("validating", _percent(part, len(source.layers), 0.85))
        layer = preparation.layer_prepare(tables, selected=selected, target=target, many=len(source.layers) > 1)
        prepared += [layer] if layer else []
        progress.check_cancelled()
    if not prepared:
        raise ImportRefused("The file holds no features.")
    progress.set("loading", 75)
    _load(job, params, mode, prepared, source_format=source.source_format, progress=progress)


def _fetched(job: Job, params: ImportParams, progress: ProgressReporter) -> ImportParams:
    """A URL import's first phase: download through the guarded client, then check the file as an upload."""

    def on_progress(phase: str) -> None:
        progress.set(phase, 1)
        progress.check_cancelled()

    progress.set("downloading", 1)
    upload = remote.url_fetch(
        job_id=job.pk, url=params.get("url") or "", url_format=params.get("url_format"), on_progress=on_progress
    )
    _checked_upload(upload)
    return {**params, "file_path": str(upload.path.relative_to(Path(settings.MEDIA_ROOT))), "file_size": upload.size}


def _actor_and_user(job: Job) -> tuple[Actor, User]:
    user = job.created_by
    if user is None or not user.is_active:
        raise ImportRefused("The person who started this import no longer has an account.")
    return actor_for(user), user


def _target_layer(job: Job, params: ImportParams, mode: ImportMode) -> Layer | None:
    """The layer to append to or replace, re-checked: the user may have lost the right since the upload."""
    if mode == ImportMode.NEW:
        return None
    actor, _ = _actor_and_user(job)
    try:
        access = layer_access(actor, params["layer"] or "", action=LayerAction.EDIT)
    except ApplicationError:
        raise ImportRefused("The layer is gone, or you may no longer edit it.") from None
    return access.layer


def _load(
    job: Job, params: ImportParams, mode: ImportMode, prepared: list[preparation.PreparedLayer], *,
    source_format: safety.SourceFormat, progress: ProgressReporter,
) -> None:  # fmt: skip
    """Load every prepared layer and mark the job succeeded, in one transaction: all of it or nothing."""
    actor, user = _actor_and_user(job)
    with transaction.atomic():
        if any(_gets_own_partition(mode, layer) for layer in prepared):
            storage.big_load_lock()  # before any layer row is written: see apps/layers/storage.py
        entries = [
            _load_layer(job, params, mode, layer, actor=actor, user=user, many=len(prepared) > 1) for layer in prepared
        ]
        progress.set("indexing", 90)
        result = results.import_result(mode=mode, source_format=source_format, entries=entries)
        if not job_succeed(job=job, result=dict(result), layer_id=entries[0]["layer"]):
            raise ImportCancelled()  # rolls the whole load back
        for entry in entries:
            transaction.on_commit(partial(_queue_tiling, entry["layer"], job.workspace_id))


def _gets_own_partition(mode: ImportMode, prepared: preparation.PreparedLayer) -> bool:
    """A big new layer is loaded into a table of its own, indexed afterwards (apps/layers/storage.py)."""
    return mode == ImportMode.NEW and prepared.counts.imported >= settings.IMPORTS_OWN_PARTITION_MIN_FEATURES


def _load_layer(
    job: Job, params: ImportParams, mode: ImportMode, prepared: preparation.PreparedLayer, *,
    actor: Actor, user: User, many: bool,
) -> LayerResult:  # fmt: skip
    own_partition = _gets_own_partition(mode, prepared)
    if mode == ImportMode.NEW:
        name = results.new_layer_name(params["name"], prepared.source_layer if many else None)
        bucket = storage.bucket_allocate() if own_partition else storage.SHARED_BUCKET
        layer = _new_layer(actor, user, job.workspace, name=name, family=prepared.family, bucket=bucket)
    else:
        layer = layer_locked(_target_layer(job, params, mode))  # type: ignore[arg-type]
    entry = results.layer_result(prepared, layer=layer)
    tables, schema, family = prepared.tables, prepared.schema, prepared.family
    if mode == ImportMode.UPSERT:
        upserted = loading.features_upsert(
            tables, layer_id=layer.pk, workspace_id=layer.workspace_id, bucket=layer.storage_bucket, user_id=user.pk,
            key=params.get("key") or "", delete_missing=bool(params.get("delete_missing")),
            schema=schema, family=family,
        )  # fmt: skip
        entry.update(
            inserted=upserted.inserted, updated=upserted.updated, unchanged=upserted.unchanged,
            deleted=upserted.deleted,
        )  # fmt: skip
        changed, unpinned = upserted.inserted + upserted.updated + upserted.deleted, upserted.unpinned_comments
    else:
        loaded = loading.features_load(
            tables, layer_id=layer.pk, workspace_id=layer.workspace_id, bucket=layer.storage_bucket,
            user_id=user.pk, replace=mode == ImportMode.REPLACE, schema=schema, family=family,
            new_partition=own_partition,
        )  # fmt: skip
        changed, unpinned = loaded.inserted, loaded.unpinned_comments
        entry.update(imported=changed)
    _announce(layer, user, mode, changed, unpinned_comments=unpinned)
    return entry


def _queue_tiling(layer_id: str, workspace_id: object) -> None:
    """After the load commits: large point layers get their low-zoom aggregates built (apps/tiles)."""
    from apps.tiles.services import layer_tiling_schedule

    layer = Layer.objects.for_workspace(workspace_id).filter(pk=layer_id).first()
    if layer is not None:
        layer_tiling_schedule(layer=layer)


def _new_layer(
    actor: Actor, user: User, workspace: Workspace, *, name: str, family: GeometryType, bucket: int
) -> Layer:
    try:
        return layer_create(
            actor=actor, user=user, workspace=workspace, name=name[:200], geometry_type=family, storage_bucket=bucket
        )
    except ApplicationError:
        raise ImportRefused("You may no longer create layers in this workspace.") from None


def _announce(layer: Layer, user: User, mode: ImportMode, inserted: int, *, unpinned_comments: tuple[str, ...]) -> None:
    """A `features.imported` event on each map showing the layer, committed with the features.

    It names the comments whose feature the import removed (they stay on the map, unpinned),
    so open maps can move them without reloading.
    """
    if mode == ImportMode.NEW:
        return
    from apps.layers.selectors import maps_holding

    map_ids = [m.pk for m in maps_holding(layer)]
    if map_ids:
        payload: dict[str, Any] = {
            "layer": str(layer.pk), "mode": mode.value, "count": inserted, "unpinned_comments": list(unpinned_comments),
        }  # fmt: skip
        map_events_append(
            workspace_id=layer.workspace_id, map_ids=map_ids, type="features.imported", payload=payload,
            actor_id=user.pk,
        )  # fmt: skip
