"""Imports store a layer's rows in spatial order, so a tile reads neighbouring heap pages,
while feature ids keep the file's order (exports and lists read like the file)."""

from __future__ import annotations

import random

import pytest
from django.db import connection

from apps.imports.tests import files
from apps.imports.tests.conftest import Team, job_of, layer_of, post_import

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager")]


def _scattered_points(count: int) -> list[tuple[object, ...]]:
    """Points in a random order over Finland, so file order and spatial order disagree."""
    rng = random.Random(7)
    return [
        (f"p{i}", round(rng.uniform(20, 31), 5), round(rng.uniform(59.5, 70), 5), 1900 + i % 100, True, "2020-01-01")
        for i in range(count)
    ]


def _physical_order_is_spatial_order(layer_id: object) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT array_agg(id ORDER BY ctid) = array_agg(id ORDER BY geom), count(*) "
            "FROM layers_feature WHERE layer_id = %s",
            [layer_id],
        )
        same, count = cursor.fetchone()
    assert count == 300
    return same


def _names_by_id(layer_id: object) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT properties ->> 'name' FROM layers_feature WHERE layer_id = %s ORDER BY id", [layer_id])
        return [name for (name,) in cursor.fetchall()]


def test_a_new_layer_is_stored_in_spatial_order_with_ids_in_file_order(team: Team) -> None:
    points = _scattered_points(300)
    content = files.geojson(files.point_features(points))
    layer = layer_of(job_of(post_import(team.client(), "s.geojson", content, workspace=team.workspace.slug, name="S")))

    assert _physical_order_is_spatial_order(layer.pk)
    assert _names_by_id(layer.pk) == [name for name, *_ in points]


def test_imported_ids_come_from_the_feature_sequence_so_later_features_follow_them(team: Team) -> None:
    content = files.geojson(files.point_features(_scattered_points(20)))
    layer = layer_of(job_of(post_import(team.client(), "s.geojson", content, workspace=team.workspace.slug, name="S")))
    body = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [24.95, 60.17]}, "properties": {}}
    created = team.client().post(f"/api/v1/layers/{layer.pk}/features/", body, format="json")
    assert created.status_code == 201, created.data

    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM layers_feature WHERE layer_id = %s ORDER BY id", [layer.pk])
        ids = [feature_id for (feature_id,) in cursor.fetchall()]
    assert ids[-1] == created.data["id"] and ids[:-1] == list(range(ids[0], ids[0] + 20))
