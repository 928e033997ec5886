"""Optimistic concurrency on feature writes: ETag on reads, If-Match on writes."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from apps.layers.models import Feature, Layer
from apps.workspaces.models import Role
from conftest import client_for
from tests.factories import FeatureFactory, MapLayerFactory, MembershipFactory


def _world():
    entry = MapLayerFactory()
    workspace = entry.map.workspace
    alice = MembershipFactory(workspace=workspace, role=Role.EDITOR).user
    bob = MembershipFactory(workspace=workspace, role=Role.EDITOR).user
    feature = FeatureFactory(layer=entry.layer, workspace=workspace, properties={"status": "draft"})
    return entry.layer, feature, alice, bob


def _url(layer: Layer, feature: Feature) -> str:
    return f"/api/v1/layers/{layer.pk}/features/{feature.pk}/"


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_updates_of_one_version_exactly_one_wins_the_other_gets_412() -> None:
    layer, feature, alice, bob = _world()
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def write(name: str, user: object, status: str) -> None:
        client = client_for(user)
        barrier.wait()
        try:
            response = client.patch(
                _url(layer, feature), {"properties": {"status": status}}, format="json", HTTP_IF_MATCH='"1"'
            )
            results[name] = (response.status_code, response.json())
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=write, args=("alice", alice, "approved")),
        threading.Thread(target=write, args=("bob", bob, "rejected")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = sorted(code for code, _ in results.values())
    assert statuses == [200, 412], results
    winner = next(name for name, (code, _) in results.items() if code == 200)
    loser_body = next(body for code, body in results.values() if code == 412)
    assert loser_body["code"] == "stale_version"
    assert loser_body["current_version"] == 2
    stored = Feature.objects.for_workspace(layer.workspace_id).get(pk=feature.pk)
    assert stored.version == 2
    assert stored.properties["status"] == ("approved" if winner == "alice" else "rejected")


@pytest.mark.django_db
def test_a_write_with_a_stale_etag_is_refused_with_the_current_version_and_changes_nothing() -> None:
    layer, feature, alice, bob = _world()
    first = client_for(alice).patch(
        _url(layer, feature), {"properties": {"status": "a"}}, format="json", HTTP_IF_MATCH='"1"'
    )
    assert first.status_code == 200 and first["ETag"] == '"2"'
    stale = client_for(bob).patch(
        _url(layer, feature), {"properties": {"status": "b"}}, format="json", HTTP_IF_MATCH='"1"'
    )
    assert stale.status_code == 412
    assert stale.json()["current_version"] == 2
    assert stale["ETag"] == '"2"'
    assert Feature.objects.for_workspace(layer.workspace_id).get(pk=feature.pk).properties["status"] == "a"


@pytest.mark.django_db
def test_writes_without_if_match_are_refused_with_428() -> None:
    layer, feature, alice, _ = _world()
    client = client_for(alice)
    for method in ("patch", "put", "delete"):
        body = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {}}
        response = getattr(client, method)(_url(layer, feature), body, format="json")
        assert response.status_code == 428, (method, response.json())
        assert "If-Match" in response.json()["detail"]
    assert Feature.objects.for_workspace(layer.workspace_id).filter(pk=feature.pk, version=1).exists()


@pytest.mark.django_db
def test_reads_carry_the_version_as_etag_and_delete_with_it_succeeds() -> None:
    layer, feature, alice, _ = _world()
    client = client_for(alice)
    etag = client.get(_url(layer, feature))["ETag"]
    assert etag == '"1"'
    assert client.delete(_url(layer, feature), HTTP_IF_MATCH=etag).status_code == 204
    layer.refresh_from_db()
    assert layer.feature_count == 0
    assert not Feature.objects.for_workspace(layer.workspace_id).filter(pk=feature.pk).exists()


# --- creates lock the layer late: a schema or extent that moved meanwhile is never lost ----------


def _create_with_stale_access(access, user, properties, coordinates=(24.95, 60.17)):
    from apps.layers.services import FeatureInput, features_create

    geometry = {"type": "Point", "coordinates": list(coordinates)}
    return features_create(access=access, user=user, inputs=[FeatureInput(geometry, properties)])


def _access_read_now(user, layer: Layer):
    from apps.layers.selectors import layer_access
    from apps.maps.selectors import actor_for

    return layer_access(actor_for(user), str(layer.pk))


@pytest.mark.django_db(transaction=True)
def test_a_create_validated_against_an_old_schema_keeps_the_attributes_added_meanwhile() -> None:
    layer, _feature, alice, bob = _world()
    stale = _access_read_now(alice, layer)  # read before bob's create adds `owner`
    _create_with_stale_access(_access_read_now(bob, layer), bob, {"owner": "bob"})

    [created] = _create_with_stale_access(stale, alice, {"height": 12})

    layer.refresh_from_db()
    assert layer.attribute_schema == {"owner": "string", "height": "integer"}
    assert layer.feature_count == 3
    assert Feature.objects.for_workspace(layer.workspace_id).filter(pk=created.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_a_create_that_no_longer_fits_the_current_schema_is_refused_and_writes_nothing() -> None:
    from apps.core.errors import ApplicationError

    layer, _feature, alice, bob = _world()
    stale = _access_read_now(alice, layer)  # `rooms` not known yet: an integer looks fine to it
    _create_with_stale_access(_access_read_now(bob, layer), bob, {"rooms": "several"})
    before = layer.__class__.objects.for_workspace(layer.workspace_id).get(pk=layer.pk)

    with pytest.raises(ApplicationError) as refused:
        _create_with_stale_access(stale, alice, {"rooms": 3})

    assert refused.value.field == "properties.rooms"
    after = layer.__class__.objects.for_workspace(layer.workspace_id).get(pk=layer.pk)
    assert (after.feature_count, after.data_version, after.attribute_schema) == (
        before.feature_count,
        before.data_version,
        before.attribute_schema,
    )
    assert not Feature.objects.for_workspace(layer.workspace_id).filter(properties__rooms=3).exists()


@pytest.mark.django_db(transaction=True)
def test_creates_from_stale_reads_grow_the_extent_to_cover_all_of_them_and_count_each() -> None:
    layer, _feature, alice, bob = _world()
    version = Layer.objects.for_workspace(layer.workspace_id).get(pk=layer.pk).data_version
    stale_a, stale_b = _access_read_now(alice, layer), _access_read_now(bob, layer)

    _create_with_stale_access(stale_a, alice, {}, coordinates=(-120.5, -40.25))
    _create_with_stale_access(stale_b, bob, {}, coordinates=(150.75, 70.5))

    layer.refresh_from_db()
    xmin, ymin, xmax, ymax = layer.extent.extent
    assert (xmin, ymin, xmax, ymax) == pytest.approx((-120.5, -40.25, 150.75, 70.5), abs=1e-6)  # 1st pads 1e-7
    assert layer.feature_count == 3
    assert layer.data_version == version + 2


@pytest.mark.django_db(transaction=True)
def test_the_first_feature_of_an_empty_layer_gets_a_padded_extent() -> None:
    from apps.accounts.models import User

    entry = MapLayerFactory(layer__geometry_type="point")
    editor: User = MembershipFactory(workspace=entry.map.workspace, role=Role.EDITOR).user
    assert entry.layer.extent is None

    _create_with_stale_access(_access_read_now(editor, entry.layer), editor, {}, coordinates=(10.0, 20.0))

    entry.layer.refresh_from_db()
    assert entry.layer.extent.extent == pytest.approx((10.0 - 1e-7, 20.0 - 1e-7, 10.0 + 1e-7, 20.0 + 1e-7), abs=1e-12)
    assert entry.layer.extent.area > 0
