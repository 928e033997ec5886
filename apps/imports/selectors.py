"""Reads for imports: where an import may go, and the checks on its inputs."""

from __future__ import annotations

from uuid import UUID

from django.db import connection

from apps.core.errors import ApplicationError, NotFound, PermissionDenied
from apps.imports.types import ImportMode
from apps.jobs.models import Job, JobKind
from apps.layers.models import Layer, SourceType
from apps.layers.selectors import LayerAccess, layer_access
from apps.maps.permissions import Actor, LayerAction, WorkspaceAction, workspace_actions
from apps.workspaces.models import Workspace
from apps.workspaces.selectors import workspace_for


def import_target(
    actor: Actor, *, workspace_slug: str, mode: ImportMode, layer_id: UUID | None
) -> tuple[Workspace, LayerAccess | None]:
    """The workspace (and, to append or replace, the layer) the actor may import into.

    404 for a workspace or layer the actor cannot see; 403 when they see it but may
    not create layers (new) or edit the layer's features (append, replace).
    """
    workspace = workspace_for(actor, workspace_slug)
    if mode == ImportMode.NEW:
        if WorkspaceAction.CREATE not in workspace_actions(actor, workspace.pk):
            raise PermissionDenied("Viewers cannot import layers.")
        return workspace, None
    if layer_id is None:
        raise ApplicationError(f"Required to {mode} features.", field="layer")
    access = layer_access(actor, layer_id, action=LayerAction.EDIT)
    if access.layer.workspace_id != workspace.pk:
        raise NotFound()
    if access.layer.source_type != SourceType.VECTOR:
        raise ApplicationError("Only vector layers hold features.", field="layer")
    return workspace, access


def epsg_known(srid: int) -> bool:
    """An EPSG code PostGIS knows (spatial_ref_sys is keyed by srid; EPSG codes are their own srid)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM spatial_ref_sys WHERE srid = %s AND auth_name = 'EPSG'", [srid])
        return cursor.fetchone() is not None


def import_job(job_id: UUID | str) -> Job | None:
    """The import job a task was given, whatever its workspace (the task then enters that scope)."""
    return Job.objects.unscoped().filter(pk=job_id, kind=JobKind.IMPORT).select_related("created_by").first()


def export_job(job_id: UUID | str) -> Job | None:
    """The export job a task was given, whatever its workspace (the task then enters that scope)."""
    return Job.objects.unscoped().filter(pk=job_id, kind=JobKind.EXPORT).select_related("created_by").first()


def layer_locked(layer: Layer) -> Layer:
    return Layer.objects.for_workspace(layer.workspace_id).select_for_update().get(pk=layer.pk)
