"""Reads for layers and features."""

from __future__ import annotations

import json
from dataclasses import dataclass
from uuid import UUID

from django.contrib.gis.geos import Polygon
from django.db import connection
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL

from apps.core.errors import NotFound, PermissionDenied
from apps.layers.filters import Condition, filters_where
from apps.layers.models import Feature, Layer
from apps.maps.models import Map, MapLayer
from apps.maps.permissions import Actor, LayerAction, layer_actions
from apps.maps.selectors import maps_visible_to
from apps.workspaces.models import Role


@dataclass(frozen=True)
class LayerAccess:
    """A layer with what the actor may do to it and the maps it was judged through."""

    layer: Layer
    actions: frozenset[LayerAction]
    maps: tuple[Map, ...]

    def allows(self, action: LayerAction) -> bool:
        return action in self.actions


def maps_holding(layer: Layer) -> tuple[Map, ...]:
    return tuple(Map.objects.for_workspace(layer.workspace_id).filter(map_layers__layer=layer))


def maps_holding_each(layers: list[Layer]) -> dict[UUID, tuple[Map, ...]]:
    """`maps_holding` for a page of layers in one query (no N+1 in lists)."""
    found: dict[UUID, list[Map]] = {layer.pk: [] for layer in layers}
    entries = MapLayer.objects.unscoped().filter(layer__in=layers).select_related("map")
    for entry in entries:
        if entry.map.workspace_id == entry.workspace_id:
            found[entry.layer_id].append(entry.map)
    return {layer_id: tuple(maps) for layer_id, maps in found.items()}


def layer_access(actor: Actor, layer_id: UUID | str, *, action: LayerAction = LayerAction.VIEW) -> LayerAccess:
    """404 when the layer is missing or invisible to the actor; 403 when visible but `action` is not allowed."""
    layer = Layer.objects.unscoped().filter(pk=layer_id).first()
    if layer is None:
        raise NotFound()
    maps = maps_holding(layer)
    actions = layer_actions(actor, layer, maps)
    if LayerAction.VIEW not in actions:
        raise NotFound()
    if action not in actions:
        raise PermissionDenied(f"You may not {action} this layer.")
    return LayerAccess(layer=layer, actions=actions, maps=maps)


# Hot paths (tiles, socket feature writes): the layer's fields the rules, the tile SQL and the
# feature services need, and the maps holding it, in one primary-key lookup (no geometry
# decoding, no second query).
_LEAN_LAYER_SQL = """
    SELECT l.workspace_id, l.data_version, l.attribute_schema, l.geometry_type, l.is_global, l.created_by_id,
           l.editable, l.source_type, l.source_config, l.style_config, l.feature_count, l.storage_bucket,
           coalesce((
               SELECT jsonb_agg(jsonb_build_array(m.id, m.visibility, m.created_by_id))
               FROM maps_maplayer ml JOIN maps_map m ON m.id = ml.map_id AND m.workspace_id = ml.workspace_id
               WHERE ml.layer_id = l.id
           ), '[]')
    FROM layers_layer l WHERE l.id = %s
"""


def _json(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else value


def layer_access_lean(actor: Actor, layer_id: UUID | str) -> LayerAccess:
    """`layer_access` for hot paths: the same rules over lean, unsaved instances built from one query.

    The instances carry only the fields the query reads (no name, extent or configs beyond
    source and style); writers that need the whole row lock and reload it.
    """
    with connection.cursor() as cursor:
        cursor.execute(_LEAN_LAYER_SQL, [str(layer_id)])
        row = cursor.fetchone()
    if row is None:
        raise NotFound()
    (
        workspace_id,
        data_version,
        schema,
        geometry_type,
        is_global,
        created_by_id,
        editable,
        source_type,
        source_config,
        style_config,
        feature_count,
        storage_bucket,
        maps_json,
    ) = row
    layer = Layer(
        id=layer_id,
        workspace_id=workspace_id,
        data_version=data_version,
        attribute_schema=_json(schema),
        geometry_type=geometry_type,
        is_global=is_global,
        created_by_id=created_by_id,
        editable=editable,
        source_type=source_type,
        source_config=_json(source_config),
        style_config=_json(style_config),
        feature_count=feature_count,
        storage_bucket=storage_bucket,
    )
    maps = tuple(
        Map(id=UUID(map_id), workspace_id=workspace_id, visibility=visibility, created_by_id=creator)
        for map_id, visibility, creator in _json(maps_json)
    )
    actions = layer_actions(actor, layer, maps)
    if LayerAction.VIEW not in actions:
        raise NotFound()
    return LayerAccess(layer=layer, actions=actions, maps=maps)


def layers_visible_to(actor: Actor, *, workspace_id: UUID | None = None) -> QuerySet[Layer]:
    """SQL twin of `layer_actions(...)` containing VIEW, for lists."""
    if not actor.is_authenticated:
        return Layer.objects.none()
    admin_of = [ws for ws, role in actor.roles.items() if role in (Role.OWNER, Role.ADMIN)]
    editor_of = [ws for ws, role in actor.roles.items() if role == Role.EDITOR]
    visible_maps = maps_visible_to(actor).values("pk")
    on_visible_map = MapLayer.objects.unscoped().filter(map__in=visible_maps).values("layer_id")
    layers = Layer.objects.unscoped().filter(
        Q(workspace_id__in=admin_of)
        | Q(workspace_id__in=list(actor.roles), is_global=True)
        | Q(workspace_id__in=editor_of, created_by_id=actor.user_id)
        | Q(pk__in=on_visible_map)
    )
    if workspace_id is not None:
        layers = layers.filter(workspace_id=workspace_id)
    return layers


def features_of(
    layer: Layer,
    *,
    bbox: tuple[float, float, float, float] | None = None,
    conditions: tuple[Condition, ...] = (),
) -> QuerySet[Feature]:
    # bucket: the planner then reads the layer's partition only.
    features = Feature.objects.for_workspace(layer.workspace_id).filter(layer=layer, bucket=layer.storage_bucket)
    if bbox is not None:
        # Uses the GiST index on geom.
        features = features.filter(geom__intersects=Polygon.from_bbox(bbox))
    if conditions:
        where, params = filters_where(conditions, table=Feature._meta.db_table)
        # Fixed fragments from filters.py; names and values are bound parameters.
        features = features.filter(RawSQL(where, params, output_field=BooleanField()))  # noqa: S611
    return features


def feature_in(layer: Layer, feature_id: int | str) -> Feature:
    try:
        feature_id = int(feature_id)
    except (TypeError, ValueError):
        raise NotFound() from None
    feature = features_of(layer).filter(pk=feature_id).first()
    if feature is None:
        raise NotFound()
    return feature
