"""The workspace scope: which tenant the current request, task or command acts in.

Tenant-owned models (`WorkspaceOwned`) read through a manager that filters by
the scoped workspace and *raises* when there is none, so a query written
without thinking about tenancy fails loudly instead of leaking rows.
The two escapes are explicit and greppable: `for_workspace(ws)` and `unscoped()`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from django.db import models

if TYPE_CHECKING:
    from apps.workspaces.models import Workspace

_current_workspace_id: ContextVar[Any] = ContextVar("meridian_workspace_id", default=None)
# Sentinel scope for cross-tenant tools run by staff (the admin console, seeding).
ALL_WORKSPACES = object()

M = TypeVar("M", bound=models.Model)


class WorkspaceScopeError(RuntimeError):
    """A tenant-owned table was queried outside any workspace scope."""


def current_workspace_id() -> Any:
    return _current_workspace_id.get()


@contextmanager
def workspace_scope(workspace: Workspace | Any) -> Iterator[None]:
    """Run the block inside one workspace (a `Workspace` or its id)."""
    workspace_id = getattr(workspace, "pk", workspace)
    token = _current_workspace_id.set(workspace_id)
    try:
        yield
    finally:
        _current_workspace_id.reset(token)


@contextmanager
def all_workspaces_scope() -> Iterator[None]:
    """Cross-tenant scope for staff tools only (admin console, management commands)."""
    token = _current_workspace_id.set(ALL_WORKSPACES)
    try:
        yield
    finally:
        _current_workspace_id.reset(token)


def activate_workspace(workspace: Workspace | Any) -> None:
    """Enter a workspace (or its id) for the rest of the request; the middleware resets it."""
    _current_workspace_id.set(getattr(workspace, "pk", workspace))


def deactivate_workspace() -> None:
    _current_workspace_id.set(None)


class WorkspaceScopedManager(models.Manager, Generic[M]):
    def get_queryset(self) -> models.QuerySet[M]:
        workspace_id = current_workspace_id()
        if workspace_id is None:
            raise WorkspaceScopeError(
                f"{self.model.__name__} queried outside a workspace scope; "
                "use workspace_scope(), .for_workspace() or an explicit .unscoped()."
            )
        queryset = super().get_queryset()
        if workspace_id is ALL_WORKSPACES:
            return queryset
        return queryset.filter(workspace_id=workspace_id)

    def for_workspace(self, workspace: Workspace | Any) -> models.QuerySet[M]:
        return super().get_queryset().filter(workspace_id=getattr(workspace, "pk", workspace))

    def unscoped(self) -> models.QuerySet[M]:
        """Every tenant's rows. Callers must filter by an access predicate themselves."""
        return super().get_queryset()
