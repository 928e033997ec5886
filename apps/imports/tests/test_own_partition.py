"""A big import's new layer gets a partition of layers_feature of its own (apps/layers/storage.py).

The threshold is lowered so a few dozen rows count as big.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import pytest
from django.db import connection

from apps.comments.models import Comment
from apps.imports import loading
from apps.imports.loading import staging_tables_left
from apps.imports.tests.conftest import Team, feature_rows, job_of, layer_of, post_import
from apps.imports.tests.test_upsert import listings_csv, upsert
from apps.layers import storage
from apps.layers.models import Layer
from apps.workspaces.tenancy import workspace_scope
from celery_app import app as celery_app
from tests.factories import MapFactory, MapLayerFactory
from tests.workers import start_celery_worker, stop_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager")]

ROWS = 40
# listing_id, price, lat, lon, status: a grid of points around Helsinki.
LISTINGS = [(100 + i, 200_000 + 1000 * i, 60.15 + (i % 8) / 200, 24.90 + (i // 8) / 100, "active") for i in range(ROWS)]


@pytest.fixture(autouse=True)
def _big_is_twenty(settings: Any) -> None:
    settings.IMPORTS_OWN_PARTITION_MIN_FEATURES = 20


def _import(team: Team, rows: list[tuple[Any, ...]] = LISTINGS, name: str = "Listings") -> Any:
    return post_import(team.client(), "listings.csv", listings_csv(rows), workspace=team.workspace.slug, name=name)


def _big_layer(team: Team) -> Layer:
    return layer_of(job_of(_import(team)))


def _tables_holding(layer: Layer) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text, count(*) FROM layers_feature WHERE layer_id = %s GROUP BY 1", [layer.pk]
        )
        return dict(cursor.fetchall())


def _index_definitions(table: str) -> list[str]:
    """The table's indexes, written without their names and tables, so a partition's compare to the parent's."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indisprimary, regexp_replace(pg_get_indexdef(indexrelid), '^.* USING ', 'USING ') "
            "FROM pg_index WHERE indrelid = %s::regclass ORDER BY 2",
            [table],
        )
        return [f"{'primary ' if primary else ''}{definition}" for primary, definition in cursor.fetchall()]


def _indexes_attached_to_the_parent(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*) FROM pg_index i JOIN pg_inherits h ON h.inhrelid = i.indexrelid
            WHERE i.indrelid = %s::regclass
              AND h.inhparent IN (SELECT indexrelid FROM pg_index WHERE indrelid = 'layers_feature'::regclass)
            """,
            [table],
        )
        return cursor.fetchone()[0]


def test_a_big_import_gets_its_own_partition_with_every_index(team: Team) -> None:
    layer = _big_layer(team)
    table = storage.partition_name(layer.storage_bucket)
    assert layer.storage_bucket > 0 and storage.partitions()[layer.storage_bucket] == table
    assert _tables_holding(layer) == {table: ROWS}
    assert layer.feature_count == ROWS
    rows = feature_rows(layer)
    assert len(rows) == ROWS and all(r["valid"] and r["srid"] == 4326 for r in rows)
    parent = _index_definitions("layers_feature")
    assert _index_definitions(table) == parent and len(parent) == 5
    assert _indexes_attached_to_the_parent(table) == len(parent)
    assert staging_tables_left() == []


def test_a_small_import_stays_in_the_shared_partition(team: Team) -> None:
    layer = layer_of(job_of(_import(team, LISTINGS[:19])))
    assert layer.storage_bucket == storage.SHARED_BUCKET
    assert _tables_holding(layer) == {"layers_feature_b0": 19}


def test_ids_follow_the_file_and_rows_the_space_filling_curve_in_the_own_partition(team: Team) -> None:
    layer = _big_layer(team)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT properties->>'listing_id' FROM layers_feature WHERE layer_id = %s ORDER BY id", [layer.pk]
        )
        assert [int(k) for (k,) in cursor.fetchall()] == [row[0] for row in LISTINGS]


def test_tiles_of_a_partitioned_layer_render(team: Team) -> None:
    layer = _big_layer(team)
    # The z10 tile holding every listing.
    response = team.client().get(f"/tiles/layers/{layer.pk}/10/582/296.mvt")
    assert response.status_code == 200, response.status_code
    body = gzip.decompress(response.content) if response.get("Content-Encoding") == "gzip" else response.content
    features = mapbox_vector_tile.decode(body)["features"]["features"]
    assert len(features) == ROWS
    assert {f["properties"]["listing_id"] for f in features} == {row[0] for row in LISTINGS}


def test_edits_on_a_partitioned_layer_stay_in_its_partition(team: Team) -> None:
    layer = _big_layer(team)
    client = team.client()
    created = client.post(
        f"/api/v1/layers/{layer.pk}/features/",
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [24.95, 60.17]}, "properties": {"price": 1}},
        format="json",
    )
    assert created.status_code == 201, created.data
    feature_id = created.data["id"]
    updated = client.patch(
        f"/api/v1/layers/{layer.pk}/features/{feature_id}/", {"properties": {"price": 2}}, format="json",
        HTTP_IF_MATCH='"1"',
    )  # fmt: skip
    assert updated.status_code == 200, updated.data
    table = storage.partition_name(layer.storage_bucket)
    assert _tables_holding(layer) == {table: ROWS + 1}
    deleted = client.delete(f"/api/v1/layers/{layer.pk}/features/{feature_id}/", HTTP_IF_MATCH='"2"')
    assert deleted.status_code == 204
    assert _tables_holding(layer) == {table: ROWS}


def _import_into(team: Team, layer, rows: list[tuple], *, mode: str):
    """An append or replace of `rows` (as a listings CSV) into an existing layer, run to its end."""
    content, slug = listings_csv(rows), team.workspace.slug
    return job_of(post_import(team.client(), f"{mode}.csv", content, workspace=slug, mode=mode, layer=str(layer.pk)))


def test_append_to_a_partitioned_layer_goes_to_its_partition(team: Team) -> None:
    layer = _big_layer(team)
    more = [(900 + i, 1, 60.2, 24.8 + i / 100, "new") for i in range(30)]  # over the threshold: still an append
    job = _import_into(team, layer, more, mode="append")
    layer = layer_of(job)
    assert layer.feature_count == ROWS + 30
    assert _tables_holding(layer) == {storage.partition_name(layer.storage_bucket): ROWS + 30}
    assert len(storage.partitions()) == 2  # the shared one and this layer's


def test_upsert_on_a_partitioned_layer_updates_inserts_and_deletes_in_its_partition(team: Team) -> None:
    layer = _big_layer(team)
    changed = [(row[0], row[1] + 1, *row[2:]) for row in LISTINGS[:10]] + [(999, 5, 60.2, 24.9, "new")]
    job = job_of(upsert(team, layer, changed, delete_missing="true"))
    assert job.status == "succeeded", job.error
    assert (job.result["inserted"], job.result["updated"], job.result["deleted"]) == (1, 10, ROWS - 10)
    layer = layer_of(job)
    assert _tables_holding(layer) == {storage.partition_name(layer.storage_bucket): 11}


def test_replace_on_a_partitioned_layer_keeps_comments_unanchored(team: Team) -> None:
    layer = _big_layer(team)
    map = MapFactory(workspace=team.workspace, created_by=team.owner)
    MapLayerFactory(map=map, layer=layer)
    with workspace_scope(team.workspace):
        pinned = Comment.objects.create(workspace=team.workspace, map=map, feature=layer.features.first(), body="Sold?")
    replacement = [(1, 1, 60.2, 24.9, "only")]
    job = _import_into(team, layer, replacement, mode="replace")
    layer = layer_of(job)
    assert layer.feature_count == 1
    assert _tables_holding(layer) == {storage.partition_name(layer.storage_bucket): 1}
    with workspace_scope(team.workspace):
        pinned.refresh_from_db()
    assert pinned.feature_id is None and pinned.map_id == map.pk


def test_a_big_import_failing_after_the_attach_leaves_no_partition_and_no_table(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = storage.partitions()
    attach = storage.partition_attach

    def attach_then_fail(bucket: int) -> None:
        attach(bucket)
        assert storage.partition_name(bucket) in storage.partitions().values()  # attached, in this transaction
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(storage, "partition_attach", attach_then_fail)
    job = job_of(_import(team))
    assert job.status == "failed"
    assert not Layer.objects.unscoped().filter(workspace=team.workspace).exists()
    assert storage.partitions() == before
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class WHERE relname ~ '^layers_feature_b[1-9][0-9]*$'")
        assert cursor.fetchone()[0] == len(before) - 1
    assert staging_tables_left() == []


def test_a_cancelled_big_import_leaves_no_partition_and_no_table(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    from apps.jobs.models import Job
    from apps.jobs.services import job_cancel

    before = storage.partitions()
    prepare = loading.features_prepare

    def prepare_then_cancel(*args: Any, **kwargs: Any) -> loading.RepairCounts:
        counts = prepare(*args, **kwargs)
        with workspace_scope(team.workspace):
            job_cancel(job=Job.objects.get(kind="import"))
        return counts

    monkeypatch.setattr(loading, "features_prepare", prepare_then_cancel)
    job = job_of(_import(team))
    assert job.status == "cancelled"
    assert storage.partitions() == before and staging_tables_left() == []


def test_deleting_a_partitioned_layer_drops_its_partition(team: Team) -> None:
    layer = _big_layer(team)
    table = storage.partition_name(layer.storage_bucket)
    response = team.client("owner").delete(f"/api/v1/layers/{layer.pk}/")
    assert response.status_code == 204
    # The drop task ran at the commit (eager here).
    assert table not in storage.partitions().values() and staging_tables_left() == []
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [table])
        assert cursor.fetchone()[0] is None


def test_deleting_the_workspace_drops_its_layers_partitions(team: Team) -> None:
    first, second = _big_layer(team), layer_of(job_of(_import(team, name="Second")))
    tables = {storage.partition_name(first.storage_bucket), storage.partition_name(second.storage_bucket)}
    assert tables <= set(storage.partitions().values())
    response = team.client("owner").delete(f"/api/v1/workspaces/{team.workspace.slug}/")
    assert response.status_code == 204
    assert not tables & set(storage.partitions().values()) and staging_tables_left() == []


def test_a_real_worker_drops_a_deleted_layer_s_partition(team: Team, tmp_path: Path) -> None:
    layer = _big_layer(team)
    table = storage.partition_name(layer.storage_bucket)
    celery_app.conf.task_always_eager = False  # the drop goes through the broker to the worker below
    celery_app.control.purge()
    worker = start_celery_worker(queues="celery", log=tmp_path / "worker.log")
    try:
        assert team.client("owner").delete(f"/api/v1/layers/{layer.pk}/").status_code == 204
        wait_until(lambda: table not in storage.partitions().values(), timeout=60, what="the partition detached")
        wait_until(lambda: staging_tables_left() == [], timeout=30, what="the table dropped")
    finally:
        stop_worker(worker)
