"""Imports tests need real commits: ogr2ogr writes the staging table through its own connection."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from rest_framework.response import Response
from rest_framework.test import APIClient

from apps.accounts.models import User
from apps.imports.loading import staging_tables_left
from apps.jobs.models import Job
from apps.layers.models import Layer
from apps.layers.storage import unused_partitions_drop
from apps.workspaces.models import Role, Workspace
from conftest import client_for
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory

IMPORTS_URL = "/api/v1/imports/"


@pytest.fixture(scope="session", autouse=True)
def _no_scratch_tables_from_an_interrupted_run(django_db_setup: None, django_db_blocker: Any) -> None:
    """--reuse-db keeps the test database between runs, and a run stopped mid-import keeps its
    scratch tables: every later "nothing left behind" assertion would blame them on the wrong test."""
    with django_db_blocker.unblock():
        for name in staging_tables_left():
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {name}")  # names matched import_(stage|prep)_<hex>


@pytest.fixture(autouse=True)
def _no_partitions_of_flushed_layers(django_db_setup: None, django_db_blocker: Any) -> None:
    """A transactional test's flush empties layers_layer but leaves its big imports' partitions:
    drop them, or the next "nothing left behind" assertion blames them on the wrong test.
    (Skipped inside a test's transaction: a detach CONCURRENTLY cannot run there, nor is it needed.)"""
    with django_db_blocker.unblock():
        if not connection.in_atomic_block:
            unused_partitions_drop()


@pytest.fixture(autouse=True)
def _isolated_media(media_root: Path) -> Path:
    return media_root


@dataclass
class Team:
    workspace: Workspace
    owner: User
    editor: User
    viewer: User
    outsider: User  # a member of another workspace only

    def client(self, who: str = "editor") -> APIClient:
        return client_for(getattr(self, who))


@pytest.fixture
def team(transactional_db: None) -> Team:
    workspace = WorkspaceFactory()
    people = {role: MembershipFactory(workspace=workspace, role=role).user for role in ("owner", "editor", "viewer")}
    outsider = UserFactory()
    MembershipFactory(user=outsider, role=Role.OWNER)
    return Team(workspace=workspace, outsider=outsider, **people)


def post_import(client: APIClient, file_name: str, content: bytes, **fields: Any) -> Response:
    return client.post(IMPORTS_URL, {"file": SimpleUploadedFile(file_name, content), **fields}, format="multipart")


def job_of(response: Response) -> Job:
    assert response.status_code == 202, response.data
    return Job.objects.unscoped().get(pk=response.data["id"])


def layer_of(job: Job) -> Layer:
    assert job.status == "succeeded", job.error
    return Layer.objects.unscoped().get(pk=job.result["layer"])


def feature_rows(layer: Layer) -> list[dict[str, Any]]:
    """What the database holds for the layer: SRID, validity, type and properties of every row."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT ST_SRID(geom), ST_IsValid(geom), GeometryType(geom), properties, ST_X(ST_PointOnSurface(geom)),
                   ST_Y(ST_PointOnSurface(geom))
            FROM layers_feature WHERE layer_id = %s ORDER BY id
            """,
            [layer.pk],
        )
        return [
            {"srid": s, "valid": v, "type": t, "properties": json.loads(p), "x": x, "y": y}
            for s, v, t, p, x, y in cursor.fetchall()
        ]


def feature_total() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM layers_feature")
        return cursor.fetchone()[0]
