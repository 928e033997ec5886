"""Integrity the database itself enforces, whatever the Python code does."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from apps.comments.models import Comment
from apps.jobs.models import Job
from apps.layers.models import Feature
from apps.maps.models import MapLayer
from apps.workspaces.models import Invitation, Membership
from tests.factories import (
    FeatureFactory,
    LayerFactory,
    MapFactory,
    MapLayerFactory,
    MembershipFactory,
    UserFactory,
    WorkspaceFactory,
)

pytestmark = pytest.mark.django_db


def _refused(sql: str, params: list) -> str:
    with pytest.raises(IntegrityError) as raised, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    return str(raised.value)


def test_a_layer_is_on_a_map_at_most_once() -> None:
    entry = MapLayerFactory()
    with pytest.raises(IntegrityError, match="maplayer_unique_pair"), transaction.atomic():
        MapLayer.objects.for_workspace(entry.workspace).create(
            workspace=entry.workspace, map=entry.map, layer=entry.layer
        )


def test_a_map_cannot_show_a_layer_of_another_workspace() -> None:
    map, foreign_layer = MapFactory(), LayerFactory()
    message = _refused(
        "INSERT INTO maps_maplayer (created_at, updated_at, workspace_id, map_id, layer_id, display_order,"
        " is_visible, opacity) VALUES (now(), now(), %s, %s, %s, 0, true, 1)",
        [map.workspace_id, map.pk, foreign_layer.pk],
    )
    assert "maps_maplayer_layer_id_same_workspace_fk" in message


def test_a_feature_cannot_claim_another_workspace_than_its_layer() -> None:
    layer, other = LayerFactory(), WorkspaceFactory()
    message = _refused(
        "INSERT INTO layers_feature (created_at, updated_at, workspace_id, layer_id, geom, properties, version)"
        " VALUES (now(), now(), %s, %s, ST_GeomFromText('POINT(1 1)', 4326), '{}', 1)",
        [other.pk, layer.pk],
    )
    assert "layers_feature_layer_id_same_workspace_fk" in message


def test_a_feature_must_be_in_its_layer_s_bucket() -> None:
    """The shared bucket 0 is the default: a writer that forgot a big layer's bucket is refused."""
    layer = LayerFactory(storage_bucket=7)
    message = _refused(
        "INSERT INTO layers_feature (created_at, updated_at, workspace_id, layer_id, geom, properties, version)"
        " VALUES (now(), now(), %s, %s, ST_GeomFromText('POINT(1 1)', 4326), '{}', 1)",
        [layer.workspace_id, layer.pk],
    )
    assert "layers_feature_layer_id_same_workspace_fk" in message


def test_external_ids_are_unique_within_a_layer_but_not_across_layers() -> None:
    first = FeatureFactory(external_id="listing-1")
    FeatureFactory(external_id="listing-1")  # another layer: fine
    # The partition's copy of feature_external_id_unique_per_layer reports it, under its own name.
    with pytest.raises(IntegrityError, match=r"Key \(layer_id, external_id, bucket\)"), transaction.atomic():
        FeatureFactory(layer=first.layer, workspace=first.workspace, external_id="listing-1")


@pytest.mark.parametrize(
    ("wkt", "constraint"),
    [("POINT(500000 6600000)", "feature_geom_in_wgs84_range"), ("POINT EMPTY", "feature_geom_not_empty")],
)
def test_feature_geometries_must_be_non_empty_wgs84(wkt: str, constraint: str) -> None:
    layer = LayerFactory()
    message = _refused(
        "INSERT INTO layers_feature (created_at, updated_at, workspace_id, layer_id, geom, properties, version)"
        " VALUES (now(), now(), %s, %s, ST_GeomFromText(%s, 4326), '{}', 1)",
        [layer.workspace_id, layer.pk, wkt],
    )
    assert constraint in message


def test_feature_properties_must_be_a_json_object() -> None:
    layer = LayerFactory()
    message = _refused(
        "INSERT INTO layers_feature (created_at, updated_at, workspace_id, layer_id, geom, properties, version)"
        " VALUES (now(), now(), %s, %s, ST_GeomFromText('POINT(1 1)', 4326), '[1, 2]', 1)",
        [layer.workspace_id, layer.pk],
    )
    assert "feature_properties_is_object" in message


def test_geom_3857_is_computed_by_the_database() -> None:
    feature = FeatureFactory()
    stored = Feature.objects.for_workspace(feature.workspace_id).get(pk=feature.pk)
    assert stored.geom_3857.srid == 3857
    assert stored.geom_3857.x == pytest.approx(feature.geom.transform(3857, clone=True).x)


@pytest.mark.parametrize(
    ("targets", "ok"),
    [({"map": True}, True), ({"layer": True}, True), ({}, False), ({"map": True, "layer": True}, False)],
)
def test_a_comment_is_on_exactly_one_of_a_map_or_a_layer(targets: dict, ok: bool) -> None:
    map = MapFactory()
    layer = LayerFactory(workspace=map.workspace)
    fields = {"map": map if targets.get("map") else None, "layer": layer if targets.get("layer") else None}
    create = lambda: Comment.objects.for_workspace(map.workspace).create(  # noqa: E731
        workspace=map.workspace, body="Hello", author=UserFactory(), **fields
    )
    if ok:
        assert create().pk
    else:
        with pytest.raises(IntegrityError, match="comment_exactly_one_target"), transaction.atomic():
            create()


def test_a_blank_comment_is_refused() -> None:
    map = MapFactory()
    with pytest.raises(IntegrityError, match="comment_body_not_empty"), transaction.atomic():
        Comment.objects.for_workspace(map.workspace).create(workspace=map.workspace, map=map, body="  \n ")


def test_one_membership_per_user_and_workspace_and_one_pending_invitation_per_address() -> None:
    membership = MembershipFactory()
    with pytest.raises(IntegrityError, match="membership_unique_user"), transaction.atomic():
        Membership.objects.create(workspace=membership.workspace, user=membership.user)
    Invitation.objects.create(workspace=membership.workspace, email="new@example.test")
    with pytest.raises(IntegrityError, match="invitation_one_pending_per_email"), transaction.atomic():
        Invitation.objects.create(workspace=membership.workspace, email="NEW@example.test")


def test_job_progress_stays_within_0_and_100_and_finished_jobs_have_a_finish_time() -> None:
    workspace = WorkspaceFactory()
    jobs = Job.objects.for_workspace(workspace)
    with pytest.raises(IntegrityError, match="job_progress_range"), transaction.atomic():
        jobs.create(workspace=workspace, kind="import", progress=101)
    with pytest.raises(IntegrityError, match="job_finished_has_time"), transaction.atomic():
        jobs.create(workspace=workspace, kind="import", status="succeeded")


def test_polar_geometries_load_and_their_mercator_copy_is_clipped_to_the_mercator_band() -> None:
    """ST_Transform to 3857 fails beyond ±85.05°; Antarctica must still be storable."""
    from django.contrib.gis.geos import Polygon

    antarctic = Polygon(((-60, -90), (60, -90), (60, -60), (-60, -60), (-60, -90)), srid=4326)
    feature = FeatureFactory(geom=antarctic)
    stored = Feature.objects.for_workspace(feature.workspace_id).get(pk=feature.pk)
    assert stored.geom.extent == (-60, -90, 60, -60)
    south_edge = stored.geom_3857.transform(4326, clone=True).extent[1]
    assert south_edge == pytest.approx(-85.0511287798066)
