"""Modes: new, append, replace — and cancellation, which leaves the layer as it was."""

from __future__ import annotations

import pytest
from django.db import connection

from apps.collaboration.models import MapEvent
from apps.comments.models import Comment
from apps.imports import services
from apps.imports.tests import files
from apps.imports.tests.conftest import Team, feature_rows, job_of, layer_of, post_import
from apps.jobs.models import Job
from apps.layers.models import Layer
from apps.workspaces.tenancy import workspace_scope
from tests.factories import MapFactory, MapLayerFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager")]

MORE_POINTS = [("Suomenlinna", 24.9881, 60.1454, 1748, True, "2018-01-01")]


def _new_layer(team: Team) -> Layer:
    response = post_import(
        team.client(), "a.geojson", files.geojson(files.point_features()), workspace=team.workspace.slug, name="P"
    )
    return layer_of(job_of(response))


def test_append_adds_features_and_keeps_the_old_ones(team: Team) -> None:
    layer = _new_layer(team)
    map = MapFactory(workspace=team.workspace, created_by=team.owner)
    MapLayerFactory(map=map, layer=layer)
    content = files.geojson(files.point_features(MORE_POINTS))
    job = job_of(
        post_import(
            team.client(), "b.geojson", content, workspace=team.workspace.slug, mode="append", layer=str(layer.pk)
        )
    )
    layer = layer_of(job)
    assert layer.feature_count == 4 and layer.data_version == 3
    assert len(feature_rows(layer)) == 4
    with workspace_scope(team.workspace):
        assert MapEvent.objects.filter(map=map, type="features.imported").count() == 1


def test_append_with_a_contradicting_attribute_type_fails_and_changes_nothing(team: Team) -> None:
    layer = _new_layer(team)
    bad = files.point_features(MORE_POINTS)
    bad[0]["properties"]["year"] = "seventeen forty-eight"
    job = job_of(
        post_import(
            team.client(),
            "b.geojson",
            files.geojson(bad),
            workspace=team.workspace.slug,
            mode="append",
            layer=str(layer.pk),
        )
    )
    assert job.status == "failed" and "'year' is string in the file but integer in the layer" in job.error
    assert Layer.objects.unscoped().get(pk=layer.pk).feature_count == 3


def test_replace_swaps_all_features_and_the_schema(team: Team) -> None:
    layer = _new_layer(team)
    content = files.geojson(
        [{"type": "Feature", "properties": {"kind": "x"}, "geometry": {"type": "Point", "coordinates": [25.0, 60.2]}}]
    )
    job = job_of(
        post_import(
            team.client(), "c.geojson", content, workspace=team.workspace.slug, mode="replace", layer=str(layer.pk)
        )
    )
    layer = layer_of(job)
    rows = feature_rows(layer)
    assert [r["properties"] for r in rows] == [{"kind": "x"}]
    assert layer.feature_count == 1 and layer.attribute_schema == {"kind": "string"}


def test_replace_keeps_the_comments_on_replaced_features_unanchored(team: Team) -> None:
    layer = _new_layer(team)
    map = MapFactory(workspace=team.workspace, created_by=team.owner)
    MapLayerFactory(map=map, layer=layer)
    with workspace_scope(team.workspace):
        pinned = Comment.objects.create(
            workspace=team.workspace, map=map, feature=layer.features.first(), body="Is this still open?"
        )
    content = files.geojson(files.point_features(MORE_POINTS))
    job = job_of(
        post_import(
            team.client(), "c.geojson", content, workspace=team.workspace.slug, mode="replace", layer=str(layer.pk)
        )
    )
    assert layer_of(job).feature_count == 1
    with workspace_scope(team.workspace):
        pinned.refresh_from_db()
    assert pinned.map_id == map.pk and pinned.feature_id is None and pinned.body == "Is this still open?"
    with workspace_scope(team.workspace):
        event = MapEvent.objects.get(map=map, type="features.imported")
    assert event.payload["unpinned_comments"] == [str(pinned.pk)]  # open maps move the pin live


def test_replace_into_a_point_layer_skips_other_geometry_types(team: Team) -> None:
    layer = _new_layer(team)
    features = [*files.point_features(MORE_POINTS), files.polygon_feature("square", files.SQUARE)]
    job = job_of(
        post_import(
            team.client(),
            "d.geojson",
            files.geojson(features),
            workspace=team.workspace.slug,
            mode="replace",
            layer=str(layer.pk),
        )
    )
    assert job.result["imported"] == 1 and job.result["skipped"] == {"not a point geometry": 1}
    assert Layer.objects.unscoped().get(pk=layer.pk).feature_count == 1


def test_a_cancelled_job_leaves_nothing_behind(team: Team, media_root: object) -> None:
    layer = _new_layer(team)
    # Queued but not run (no eager here): cancel, then let the redelivered task try.
    from celery_app import app

    app.conf.task_always_eager = False
    response = post_import(
        team.client(),
        "e.geojson",
        files.geojson(files.point_features(MORE_POINTS)),
        workspace=team.workspace.slug,
        mode="replace",
        layer=str(layer.pk),
    )
    job = job_of(response)
    assert team.client().post(f"/api/v1/jobs/{job.pk}/cancel/").status_code == 200
    services.import_execute(job=job)
    job = Job.objects.unscoped().get(pk=job.pk)
    assert job.status == "cancelled"
    assert Layer.objects.unscoped().get(pk=layer.pk).feature_count == 3
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM layers_feature WHERE layer_id = %s", [layer.pk])
        assert cursor.fetchone()[0] == 3


def test_a_redelivered_job_that_already_committed_does_nothing(team: Team) -> None:
    layer = _new_layer(team)
    job = Job.objects.unscoped().get(layer=layer)
    services.import_execute(job=job)  # the broker delivers it again
    assert Layer.objects.unscoped().filter(workspace=team.workspace).count() == 1
    assert Layer.objects.unscoped().get(pk=layer.pk).feature_count == 3
    assert Job.objects.unscoped().get(pk=job.pk).attempts == 1


def test_cancelling_while_validating_rolls_the_import_back(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    from apps.imports import loading
    from apps.imports.loading import staging_tables_left
    from apps.jobs.services import job_cancel

    prepare = loading.features_prepare

    def prepare_then_cancel(*args: object, **kwargs: object) -> loading.RepairCounts:
        counts = prepare(*args, **kwargs)  # type: ignore[arg-type]
        with workspace_scope(team.workspace):
            job_cancel(job=Job.objects.get(kind="import"))
        return counts

    monkeypatch.setattr(loading, "features_prepare", prepare_then_cancel)
    response = post_import(
        team.client(), "a.geojson", files.geojson(files.point_features()), workspace=team.workspace.slug, name="P"
    )
    job = job_of(response)
    assert job.status == "cancelled"
    assert not Layer.objects.unscoped().filter(workspace=team.workspace).exists()
    assert staging_tables_left() == []


def test_the_import_s_larger_work_mem_ends_with_its_transaction(team: Team) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SHOW work_mem")
        before = cursor.fetchone()[0]
    layer = _new_layer(team)
    assert layer.feature_count == 3
    with connection.cursor() as cursor:
        cursor.execute("SHOW work_mem")
        assert cursor.fetchone()[0] == before != "128MB"
