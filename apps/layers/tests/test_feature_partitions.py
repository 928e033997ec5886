"""layers_feature is partitioned by bucket: a layer's features live in its bucket's partition.

A layer with a bucket of its own is set up here as a big import leaves it (apps/layers/storage.py),
inside the test's transaction, so the partition goes with the rollback.
"""

from __future__ import annotations

import pytest
from django.contrib.gis.geos import Point
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.layers import storage
from apps.layers.models import Feature, Layer
from apps.layers.selectors import layer_access
from apps.layers.services import FeatureInput, features_create
from apps.maps.selectors import actor_for
from apps.workspaces.models import Role
from conftest import client_for
from tests.factories import FeatureFactory, LayerFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def _with_own_partition(layer: Layer) -> Layer:
    bucket = storage.bucket_allocate()
    Layer.objects.unscoped().filter(pk=layer.pk).update(storage_bucket=bucket)
    storage.partition_create(bucket)
    storage.partition_attach(bucket)
    layer.refresh_from_db()
    return layer


def _table_of(feature_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM layers_feature WHERE id = %s", [feature_id])
        return cursor.fetchone()[0]


@pytest.fixture
def bucketed():
    layer = _with_own_partition(LayerFactory(geometry_type="point", is_global=True))
    editor = MembershipFactory(workspace=layer.workspace, role=Role.EDITOR).user
    return layer, editor


def test_a_feature_created_through_the_service_lands_in_its_layer_s_partition(bucketed) -> None:
    layer, editor = bucketed
    access = layer_access(actor_for(editor), str(layer.pk))
    [feature] = features_create(
        access=access,
        user=editor,
        inputs=[FeatureInput(geometry={"type": "Point", "coordinates": [24.9, 60.2]}, properties={})],
    )
    assert feature.bucket == layer.storage_bucket
    assert _table_of(feature.pk) == storage.partition_name(layer.storage_bucket)


def test_features_of_ordinary_layers_land_in_the_shared_partition() -> None:
    feature = FeatureFactory()
    assert feature.layer.storage_bucket == storage.SHARED_BUCKET == feature.bucket
    assert _table_of(feature.pk) == "layers_feature_b0"


def test_ids_stay_unique_across_partitions(bucketed) -> None:
    layer, _editor = bucketed
    shared = FeatureFactory.create_batch(3)
    own = FeatureFactory.create_batch(3, layer=layer)
    ids = [f.pk for f in shared + own]
    assert len(set(ids)) == 6
    assert Feature.objects.unscoped().filter(pk__in=ids).count() == 6


def test_a_tile_query_reads_only_its_layer_s_partition(bucketed) -> None:
    layer, editor = bucketed
    FeatureFactory(layer=layer, geom=Point(24.94, 60.17, srid=4326))
    with CaptureQueriesContext(connection) as queries:
        response = client_for(editor).get(f"/tiles/layers/{layer.pk}/14/9327/4742.mvt")
    assert response.status_code == 200
    [tile_sql] = [q["sql"] for q in queries.captured_queries if "ST_AsMVT(" in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {tile_sql}")
        plan = "\n".join(line for (line,) in cursor.fetchall())
    assert storage.partition_name(layer.storage_bucket) in plan
    assert "layers_feature_b0" not in plan
