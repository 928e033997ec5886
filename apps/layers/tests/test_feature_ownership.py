"""Who wrote a feature is kept as a bare id (no foreign key: bulk imports skip a trigger per row);
features go away with their layer and their workspace, never with a person."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client

from apps.layers.models import Feature
from apps.workspaces.models import Role
from conftest import client_for
from tests.factories import FeatureFactory, MapLayerFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def _stored_features(layer_id: object) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM layers_feature WHERE layer_id = %s", [layer_id])
        return cursor.fetchone()[0]


@pytest.fixture
def written_by_a_departed_user() -> tuple[Feature, object]:
    entry = MapLayerFactory()
    author = UserFactory()
    feature = FeatureFactory(layer=entry.layer, created_by=author, updated_by=author)
    departed_id = author.pk
    author.delete()
    return feature, departed_id


def test_deleting_a_user_keeps_their_features_and_the_audit_id(written_by_a_departed_user) -> None:
    feature, departed_id = written_by_a_departed_user
    with connection.cursor() as cursor:
        cursor.execute("SELECT created_by_id, updated_by_id FROM layers_feature WHERE id = %s", [feature.pk])
        assert cursor.fetchone() == (departed_id, departed_id)


def test_feature_endpoints_still_answer_for_features_of_a_departed_user(written_by_a_departed_user) -> None:
    feature, _ = written_by_a_departed_user
    editor = MembershipFactory(workspace=feature.workspace, role=Role.EDITOR).user
    client = client_for(editor)
    base = f"/api/v1/layers/{feature.layer_id}/features/"
    listed = client.get(base)
    assert listed.status_code == 200 and [f["id"] for f in listed.json()["features"]] == [feature.pk]
    fetched = client.get(f"{base}{feature.pk}/")
    assert fetched.status_code == 200 and fetched.json()["properties"] == feature.properties
    patch = {"properties": {"name": "renamed"}}
    changed = client.patch(f"{base}{feature.pk}/", patch, format="json", HTTP_IF_MATCH=fetched["ETag"])
    assert changed.status_code == 200, changed.json()


def test_the_admin_shows_nobody_for_a_departed_author(admin_client: Client, written_by_a_departed_user) -> None:
    feature, _ = written_by_a_departed_user
    listed = admin_client.get("/admin/layers/feature/", {"layer__id__exact": str(feature.layer_id)})
    assert listed.status_code == 200 and f">{feature.pk}<" in listed.content.decode()
    opened = admin_client.get(f"/admin/layers/feature/{feature.pk}/change/")
    assert opened.status_code == 200


def test_deleting_a_layer_deletes_its_features() -> None:
    feature = FeatureFactory()
    other = FeatureFactory(layer__workspace=feature.workspace)
    feature.layer.delete()
    assert _stored_features(feature.layer_id) == 0 and _stored_features(other.layer_id) == 1


def test_deleting_a_workspace_deletes_its_features() -> None:
    feature = FeatureFactory()
    elsewhere = FeatureFactory()
    feature.workspace.delete()
    assert _stored_features(feature.layer_id) == 0 and _stored_features(elsewhere.layer_id) == 1
