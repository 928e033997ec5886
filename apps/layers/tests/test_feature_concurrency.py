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
