"""Upsert by key: the nightly scraper refresh updates the layer in place."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from apps.collaboration.models import MapEvent
from apps.imports.tests.conftest import Team, job_of, layer_of, post_import
from apps.layers.models import Layer
from apps.workspaces.tenancy import workspace_scope
from tests.factories import CommentFactory, MapLayerFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager")]

MONDAY = [
    (101, 250_000, 60.1694, 24.9525, "active"),
    (102, 310_000, 60.1688, 24.9316, "active"),
    (103, 199_000, 60.1841, 24.9496, "active"),
    (104, 420_000, 60.1700, 24.9400, "active"),
    (105, 515_000, 60.1750, 24.9450, "active"),
]
# 101 and 103 change price, 104 moves, 105 is gone, 106 and 107 are new; 102 is as it was.
TUESDAY = [
    (101, 245_000, 60.1694, 24.9525, "active"),
    (102, 310_000, 60.1688, 24.9316, "active"),
    (103, 189_000, 60.1841, 24.9496, "active"),
    (104, 420_000, 60.1710, 24.9410, "active"),
    (106, 275_000, 60.1600, 24.9300, "active"),
    (107, 330_000, 60.1650, 24.9350, "active"),
]


def listings_csv(rows: list[tuple[Any, ...]]) -> bytes:
    lines = ["listing_id,price,lat,lon,status"] + [",".join(str(v) for v in row) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def by_key(layer: Layer) -> dict[str, dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT external_id, version, (properties->>'price')::int, ST_X(geom), ST_Y(geom) "
            "FROM layers_feature WHERE layer_id = %s",
            [layer.pk],
        )
        return {k: {"version": v, "price": p, "xy": (x, y)} for k, v, p, x, y in cursor.fetchall()}


def upsert(team: Team, layer: Layer, rows: list[tuple[Any, ...]], **fields: Any) -> Any:
    return post_import(
        team.client(), "listings.csv", listings_csv(rows), workspace=team.workspace.slug, mode="upsert",
        layer=str(layer.pk), key="listing_id", **fields,
    )  # fmt: skip


def test_the_nightly_refresh_inserts_updates_deletes_and_leaves_the_rest(team: Team) -> None:
    first = job_of(
        post_import(team.client(), "listings.csv", listings_csv(MONDAY), workspace=team.workspace.slug, name="Listings")
    )
    layer = layer_of(first)
    assert layer.data_version == 2

    job = job_of(upsert(team, layer, TUESDAY, delete_missing="true"))
    layer = layer_of(job)
    assert {k: job.result[k] for k in ("inserted", "updated", "unchanged", "deleted")} == {
        "inserted": 2, "updated": 3, "unchanged": 1, "deleted": 1,
    }  # fmt: skip
    rows = by_key(layer)
    assert sorted(rows) == ["101", "102", "103", "104", "106", "107"]
    assert {k: r["version"] for k, r in rows.items()} == {"101": 2, "102": 1, "103": 2, "104": 2, "106": 1, "107": 1}
    assert rows["101"]["price"] == 245_000 and rows["103"]["price"] == 189_000
    assert rows["104"]["xy"] == pytest.approx((24.9410, 60.1710))
    assert layer.feature_count == 6 and layer.data_version == 3

    again = layer_of(job_of(upsert(team, layer, TUESDAY, delete_missing="true")))
    result = Layer.objects.unscoped().get(pk=again.pk)
    assert Layer.objects.unscoped().get(pk=layer.pk).feature_count == 6
    assert {k: r["version"] for k, r in by_key(result).items()} == {k: r["version"] for k, r in rows.items()}


def test_an_identical_refresh_changes_nothing(team: Team) -> None:
    layer = layer_of(
        job_of(post_import(team.client(), "l.csv", listings_csv(MONDAY), workspace=team.workspace.slug, name="L"))
    )
    job = job_of(upsert(team, layer, MONDAY))
    assert (
        job.result["unchanged"] == 5 and job.result["updated"] == job.result["inserted"] == job.result["deleted"] == 0
    )
    assert {r["version"] for r in by_key(layer).values()} == {1}


def test_without_delete_missing_the_missing_features_stay(team: Team) -> None:
    layer = layer_of(
        job_of(post_import(team.client(), "l.csv", listings_csv(MONDAY), workspace=team.workspace.slug, name="L"))
    )
    job = job_of(upsert(team, layer, TUESDAY))
    assert job.result["deleted"] == 0 and job.result["inserted"] == 2
    assert sorted(by_key(layer)) == ["101", "102", "103", "104", "105", "106", "107"]


def test_deleting_a_missing_feature_unanchors_its_comments_and_keeps_the_rest(team: Team) -> None:
    layer = layer_of(
        job_of(post_import(team.client(), "l.csv", listings_csv(MONDAY), workspace=team.workspace.slug, name="L"))
    )
    with workspace_scope(team.workspace):
        features = {str(f.properties["listing_id"]): f for f in layer.features.all()}
        on_gone = CommentFactory(map=None, layer=layer, workspace=team.workspace, feature=features["105"])
        on_kept = CommentFactory(map=None, layer=layer, workspace=team.workspace, feature=features["102"])
    shown_on = MapLayerFactory(layer=layer, map__workspace=team.workspace).map
    job = job_of(upsert(team, layer, TUESDAY, delete_missing="true"))
    assert job.status == "succeeded", job.error
    assert job.result["deleted"] == 1 and "105" not in by_key(layer)
    with workspace_scope(team.workspace):
        on_gone.refresh_from_db()
        on_kept.refresh_from_db()
    assert on_gone.layer_id == layer.pk and on_gone.feature_id is None
    assert on_kept.feature_id == features["102"].pk
    with workspace_scope(team.workspace):
        event = MapEvent.objects.get(map=shown_on, type="features.imported")
    assert event.payload["unpinned_comments"] == [str(on_gone.pk)]


def test_a_key_repeated_in_the_file_fails_and_changes_nothing(team: Team) -> None:
    layer = layer_of(
        job_of(post_import(team.client(), "l.csv", listings_csv(MONDAY), workspace=team.workspace.slug, name="L"))
    )
    job = job_of(upsert(team, layer, [*TUESDAY, (106, 1, 60.1, 24.9, "dup")]))
    assert job.status == "failed" and "'listing_id' is not unique in the file: '106' (2 times)" in job.error
    assert Layer.objects.unscoped().get(pk=layer.pk).data_version == layer.data_version
    assert {r["version"] for r in by_key(layer).values()} == {1}


def test_a_key_the_file_lacks_fails_the_job(team: Team) -> None:
    layer = layer_of(
        job_of(post_import(team.client(), "l.csv", listings_csv(MONDAY), workspace=team.workspace.slug, name="L"))
    )
    job = job_of(
        post_import(
            team.client(),
            "l.csv",
            listings_csv(TUESDAY),
            workspace=team.workspace.slug,
            mode="upsert",
            layer=str(layer.pk),
            key="ref",
        )
    )
    assert job.status == "failed" and "no attribute 'ref'" in job.error


def test_upsert_needs_a_key(team: Team) -> None:
    layer = layer_of(
        job_of(post_import(team.client(), "l.csv", listings_csv(MONDAY), workspace=team.workspace.slug, name="L"))
    )
    response = post_import(
        team.client(), "l.csv", listings_csv(TUESDAY), workspace=team.workspace.slug, mode="upsert", layer=str(layer.pk)
    )
    assert response.status_code == 400 and "key" in str(response.data)


def test_a_viewer_cannot_upsert(team: Team) -> None:
    layer = layer_of(
        job_of(post_import(team.client(), "l.csv", listings_csv(MONDAY), workspace=team.workspace.slug, name="L"))
    )
    response = post_import(
        team.client("viewer"), "l.csv", listings_csv(TUESDAY), workspace=team.workspace.slug, mode="upsert",
        layer=str(layer.pk), key="listing_id",
    )  # fmt: skip
    assert response.status_code in (403, 404)
