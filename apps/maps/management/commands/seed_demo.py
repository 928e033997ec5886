"""`manage.py seed_demo`: the demo workspace `make run` opens on (DESIGN §12).

Idempotent: every object is looked up before it is created, and a demo layer
that already exists is left as it is (with its features and any edits), so a
second run only reads and never starts ogr2ogr.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from allauth.account.models import EmailAddress
from django.contrib.gis.geos import Point
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.accounts.models import User
from apps.layers import osm_demo
from apps.layers.models import GeometryType, Layer
from apps.layers.osm_demo import DemoLayer, Tag
from apps.layers.services import layer_create
from apps.maps.models import Map, Visibility
from apps.maps.permissions import Actor, layer_actions
from apps.maps.selectors import actor_for
from apps.maps.services import map_create, map_layer_add
from apps.workspaces.models import Membership, Role, Workspace
from apps.workspaces.services import workspace_create

DEMO_PASSWORD = "meridian-demo"  # noqa: S105 -- the public demo password, printed by compose/local/serve.sh
WORKSPACE_NAME = "Demo"
WORKSPACE_SLUG = "demo"
MAP_NAME = "Helsinki"
# The extract covers about 1 by 1.7 km of the city centre; zoom 14.5 frames all of it.
MAP_CENTER = (24.9443, 60.1716)  # lon, lat
MAP_ZOOM = 14.5


def _stop(value: str, color: str, label: str) -> dict[str, Any]:
    return {"value": value, "color": color, "label": label}


BUILDINGS = DemoLayer(
    name="Buildings",
    description="Building footprints of central Helsinki from OpenStreetMap.",
    geometry_type=GeometryType.POLYGON,
    osm_layer="multipolygons",
    where="building IS NOT NULL",
    tags=(
        Tag("name"),
        Tag("building"),
        Tag("building:levels", "integer"),
        Tag("height", "number"),
        Tag("addr:street"),
        Tag("addr:housenumber"),
        Tag("addr:postcode"),
        Tag("amenity"),
        Tag("shop"),
        Tag("tourism"),
        Tag("start_date"),
        Tag("architect"),
        Tag("wikidata"),
    ),
    style={
        "type": "simple",
        "color": "#c9b8a3",
        "stroke_color": "#8a7560",
        "stroke_width": 0.5,
        "opacity": 0.85,
        "label_property": "name",
    },
)

ROADS = DemoLayer(
    name="Roads",
    description="Streets, paths and cycleways of central Helsinki from OpenStreetMap.",
    geometry_type=GeometryType.LINE,
    osm_layer="lines",
    where="highway IS NOT NULL",
    tags=(
        Tag("name"),
        Tag("highway"),
        Tag("ref"),
        Tag("maxspeed", "integer"),
        Tag("lanes", "integer"),
        Tag("oneway"),
        Tag("surface"),
        Tag("lit"),
        Tag("bridge"),
        Tag("tunnel"),
    ),
    style={
        "type": "categorized",
        "property": "highway",
        "color": "#adb5bd",
        "stroke_width": 2,
        "opacity": 0.9,
        "label_property": "name",
        "stops": [
            _stop("primary", "#e8590c", "Primary road"),
            _stop("secondary", "#f59f00", "Secondary road"),
            _stop("tertiary", "#fcc419", "Tertiary road"),
            _stop("residential", "#868e96", "Residential street"),
            _stop("unclassified", "#868e96", "Minor road"),
            _stop("service", "#ced4da", "Service road"),
            _stop("pedestrian", "#d6336c", "Pedestrian street"),
            _stop("footway", "#f783ac", "Footway"),
            _stop("steps", "#f783ac", "Steps"),
            _stop("cycleway", "#1c7ed6", "Cycleway"),
        ],
    },
)

POINTS_OF_INTEREST = DemoLayer(
    name="Points of interest",
    description="Restaurants, cafés, shops, hotels and other amenities of central Helsinki from OpenStreetMap.",
    geometry_type=GeometryType.POINT,
    osm_layer="points",
    where="amenity IS NOT NULL OR shop IS NOT NULL OR tourism IS NOT NULL",
    tags=(
        Tag("name"),
        Tag("amenity"),
        Tag("shop"),
        Tag("tourism"),
        Tag("cuisine"),
        Tag("opening_hours"),
        Tag("website"),
        Tag("phone"),
        Tag("wheelchair"),
        Tag("addr:street"),
        Tag("addr:housenumber"),
    ),
    style={
        "type": "categorized",
        "property": "amenity",
        "color": "#7048e8",
        "stroke_color": "#ffffff",
        "stroke_width": 1,
        "size": 6,
        "opacity": 0.9,
        "label_property": "name",
        "stops": [
            _stop("restaurant", "#e03131", "Restaurant"),
            _stop("cafe", "#a0522d", "Café"),
            _stop("fast_food", "#f76707", "Fast food"),
            _stop("pub", "#f59f00", "Pub"),
            _stop("bar", "#f59f00", "Bar"),
            _stop("bench", "#2f9e44", "Bench"),
            _stop("bicycle_parking", "#1c7ed6", "Bicycle parking"),
        ],
    },
)

# Added in this order, so display_order runs bottom to top: areas, then lines, then points.
DEMO_LAYERS: tuple[DemoLayer, ...] = (BUILDINGS, ROADS, POINTS_OF_INTEREST)


@dataclass(frozen=True)
class DemoLogin:
    email: str
    name: str
    role: Role


MEMBERS = (
    DemoLogin("owner@demo.meridian.test", "Olivia Owner", Role.OWNER),
    DemoLogin("editor@demo.meridian.test", "Eero Editor", Role.EDITOR),
    DemoLogin("viewer@demo.meridian.test", "Vilja Viewer", Role.VIEWER),
)
ADMIN_EMAIL = "admin@demo.meridian.test"  # a staff superuser for /admin/, in no workspace


@dataclass(frozen=True)
class SeededLayer:
    layer: Layer
    load: osm_demo.LoadResult | None  # None: the layer was already there


class Command(BaseCommand):
    help = "Create the demo logins, the Demo workspace and a Helsinki map with OpenStreetMap layers (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        try:
            pbf = osm_demo.helsinki_pbf()
            osm_demo.ogr2ogr_path()
        except osm_demo.OsmDemoError as exc:
            raise CommandError(str(exc)) from None

        with transaction.atomic():
            users = {login.role: _demo_user(login.email, name=login.name) for login in MEMBERS}
            _demo_user(ADMIN_EMAIL, name="Meridian Admin", staff=True)
            owner = users[Role.OWNER]
            workspace = _demo_workspace(owner=owner, users=users)
            # Loaded after the workspace exists, so it carries the owner role just granted.
            actor = actor_for(owner)
            map = _helsinki_map(actor=actor, owner=owner, workspace=workspace)

        try:
            seeded = [
                _demo_layer(spec, pbf=pbf, actor=actor, owner=owner, workspace=workspace, map=map)
                for spec in DEMO_LAYERS
            ]
        except osm_demo.OsmDemoError as exc:
            raise CommandError(str(exc)) from None
        if options["verbosity"] >= 1:
            self._summary(workspace, map, seeded, seconds=time.monotonic() - started)

    def _summary(self, workspace: Workspace, map: Map, seeded: list[SeededLayer], *, seconds: float) -> None:
        self.stdout.write(f'Demo workspace "{workspace.name}" (/{workspace.slug}), map "{map.name}":')
        for item in seeded:
            self.stdout.write(
                f"  {item.layer.name:<20} {item.layer.feature_count:>6} features  ({_load_note(item.load)})"
            )
        self.stdout.write(f"Logins (password: {DEMO_PASSWORD}):")
        for login in MEMBERS:
            self.stdout.write(f"  {login.email:<28} {login.role}")
        self.stdout.write(f"  {ADMIN_EMAIL:<28} staff superuser, for /admin/")
        self.stdout.write("Map data © OpenStreetMap contributors, ODbL 1.0.")
        self.stdout.write(self.style.SUCCESS(f"Demo ready in {seconds:.1f} s."))


def _demo_user(email: str, *, name: str, staff: bool = False) -> User:
    """The login, created once; an existing account keeps its password.

    allauth needs a verified primary EmailAddress, or mandatory verification
    would stop the demo logins at the "confirm your email" page.
    """
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        create = User.objects.create_superuser if staff else User.objects.create_user
        user = create(email, DEMO_PASSWORD, name=name)
    address, _ = EmailAddress.objects.get_or_create(
        user=user, email=email, defaults={"verified": True, "primary": True}
    )
    if not address.verified:
        address.verified = True
        address.save(update_fields=["verified"])
    return user


def _demo_workspace(*, owner: User, users: dict[Role, User]) -> Workspace:
    workspace = Workspace.objects.filter(slug=WORKSPACE_SLUG).first()
    if workspace is None:
        workspace = workspace_create(
            user=owner,
            name=WORKSPACE_NAME,
            slug=WORKSPACE_SLUG,
            description="A sample workspace with OpenStreetMap data of central Helsinki.",
        )
    for role, user in users.items():
        membership, _ = Membership.objects.get_or_create(workspace=workspace, user=user, defaults={"role": role})
        if membership.role != role:
            membership.role = role
            membership.save(update_fields=["role", "updated_at"])
    return workspace


def _helsinki_map(*, actor: Actor, owner: User, workspace: Workspace) -> Map:
    map = Map.objects.for_workspace(workspace).filter(name=MAP_NAME).first()
    if map is not None:
        return map
    return map_create(
        actor=actor,
        user=owner,
        workspace=workspace,
        name=MAP_NAME,
        description="Buildings, roads and points of interest of central Helsinki, from OpenStreetMap.",
        center=Point(*MAP_CENTER, srid=4326),
        zoom=MAP_ZOOM,
        visibility=Visibility.WORKSPACE,
    )


def _demo_layer(
    spec: DemoLayer, *, pbf: Path, actor: Actor, owner: User, workspace: Workspace, map: Map
) -> SeededLayer:
    """The layer with its features on the map; created, loaded and added in one transaction."""
    existing = Layer.objects.for_workspace(workspace).filter(name=spec.name, category=osm_demo.OSM_CATEGORY).first()
    if existing is not None:
        return SeededLayer(layer=existing, load=None)
    with osm_demo.staged_osm_layer(spec, pbf=pbf) as staging_table, transaction.atomic():
        layer = layer_create(
            actor=actor,
            user=owner,
            workspace=workspace,
            name=spec.name,
            description=spec.description,
            category=osm_demo.OSM_CATEGORY,
            geometry_type=spec.geometry_type,
            style_config=spec.style,
            legend_config=_legend(spec),
            metadata=osm_demo.OSM_METADATA,
            is_global=True,  # also listed in the workspace's layer library
        )
        load = osm_demo.osm_features_load(layer=layer, spec=spec, table=staging_table, user=owner)
        map_layer_add(
            actor=actor, user=owner, map=map, layer=layer, layer_permissions=layer_actions(actor, layer, (map,))
        )
    return SeededLayer(layer=layer, load=load)


def _load_note(load: osm_demo.LoadResult | None) -> str:
    if load is None:
        return "already there"
    skipped = load.staged - load.loaded
    # Ways cut by the extract's edge can collapse to fewer points than their geometry type needs.
    return f"loaded now; {skipped} skipped, cut to nothing by the extract's edge" if skipped else "loaded now"


def _legend(spec: DemoLayer) -> dict[str, Any]:
    """One legend entry per style category, plus the fallback colour."""
    stops = spec.style.get("stops", [])
    items = [{"label": stop["label"], "color": stop["color"]} for stop in stops]
    fallback = "Other" if stops else spec.name
    return {"title": spec.name, "items": [*items, {"label": fallback, "color": spec.style["color"]}]}
