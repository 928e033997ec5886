from __future__ import annotations

import pytest

from apps.maps.models import Map
from apps.workspaces.tenancy import WorkspaceScopeError, all_workspaces_scope, workspace_scope
from tests.factories import MapFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def test_tenant_tables_fail_closed_outside_a_workspace_scope() -> None:
    MapFactory()
    with pytest.raises(WorkspaceScopeError, match="outside a workspace scope"):
        list(Map.objects.all())


def test_a_workspace_scope_sees_only_its_own_rows() -> None:
    mine, theirs = MapFactory(), MapFactory()
    with workspace_scope(mine.workspace):
        assert list(Map.objects.values_list("pk", flat=True)) == [mine.pk]
        assert not Map.objects.filter(pk=theirs.pk).exists()


def test_for_workspace_and_unscoped_are_the_explicit_escapes() -> None:
    first, second = MapFactory(), MapFactory()
    assert list(Map.objects.for_workspace(second.workspace).values_list("pk", flat=True)) == [second.pk]
    assert set(Map.objects.unscoped().values_list("pk", flat=True)) == {first.pk, second.pk}


def test_the_scope_ends_with_its_block() -> None:
    workspace = WorkspaceFactory()
    with workspace_scope(workspace):
        Map.objects.count()
    with pytest.raises(WorkspaceScopeError):
        Map.objects.count()
    with all_workspaces_scope():
        assert Map.objects.count() == 0
