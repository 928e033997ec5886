from __future__ import annotations

import pytest

from apps.workspaces.models import Role
from conftest import client_for
from tests.factories import MapLayerFactory, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor_setup():
    entry = MapLayerFactory()
    editor = MembershipFactory(workspace=entry.map.workspace, role=Role.EDITOR).user
    return entry.map, entry.layer, editor


def test_editor_creates_a_feature_and_reads_it_back_as_geojson_with_an_etag(editor_setup) -> None:
    _map, layer, editor = editor_setup
    client = client_for(editor)
    body = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [24.95, 60.17]},
        "properties": {"name": "Kiasma", "floors": 5},
    }
    created = client.post(f"/api/v1/layers/{layer.pk}/features/", body, format="json")
    assert created.status_code == 201, created.json()
    assert created["ETag"] == '"1"'
    feature_id = created.json()["id"]
    fetched = client.get(f"/api/v1/layers/{layer.pk}/features/{feature_id}/")
    assert fetched.json()["geometry"] == {"type": "Point", "coordinates": [24.95, 60.17]}
    assert fetched.json()["properties"] == {"name": "Kiasma", "floors": 5}
    layer.refresh_from_db()
    assert layer.feature_count == 1
    assert layer.attribute_schema == {"name": "string", "floors": "integer"}
    assert layer.data_version == 2
