"""Writes for layers and their features.

Every feature write, in one transaction: locks the layer row (so schema merges
and counters are serialised per layer), writes the features, bumps the layer's
`data_version` (tiles key on it), and appends a `MapEvent` to each map showing
the layer. Updates and deletes are compare-and-swap on `Feature.version`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.gis.geos import GEOSGeometry
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.accounts.models import User
from apps.collaboration.services import map_events_append
from apps.core.errors import ApplicationError, Conflict, NotFound, PermissionDenied, StaleVersion
from apps.core.geometry import parse_geojson_geometry
from apps.layers import storage
from apps.layers.configs import LayerMetadata, LegendConfig, StyleConfig, validated, validated_source
from apps.layers.filters import parse_filters
from apps.layers.models import Feature, Layer, SourceType
from apps.layers.schema import merge_properties
from apps.layers.selectors import LayerAccess
from apps.maps.permissions import Actor, LayerAction, WorkspaceAction, workspace_actions
from apps.tiles.pointcolumns import point_columns_remove_later
from apps.workspaces.models import Workspace

LAYER_CONTENT_FIELDS = frozenset({"style_config", "legend_config"})
TILE_AFFECTING_FIELDS = frozenset({"style_config", "source_config"})
LAYER_MANAGE_FIELDS = frozenset(
    {"name", "description", "category", "metadata", "editable", "is_global", "source_config"}
)


def _validated_blobs(fields: dict[str, Any], source_type: str, schema: dict[str, str]) -> dict[str, Any]:
    blob_models = {"style_config": StyleConfig, "legend_config": LegendConfig, "metadata": LayerMetadata}
    clean = dict(fields)
    for name, model in blob_models.items():
        if name in clean:
            clean[name] = validated(model, clean[name], field=name)
    if "source_config" in clean:
        clean["source_config"] = validated_source(source_type, clean["source_config"])
    for index, rule in enumerate(clean.get("style_config", {}).get("zoom_rules", [])):
        _check_rule(rule["where"], schema, field=f"style_config.zoom_rules[{index}].where")
    return clean


def _check_rule(where: dict[str, str], schema: dict[str, str], *, field: str) -> None:
    """A zoom rule's filter must be valid for the layer's attributes, like a tile request's."""
    try:
        parse_filters(where, schema)
    except ApplicationError as exc:
        raise ApplicationError(exc.message, field=f"{field}.{exc.field}") from None


@transaction.atomic
def layer_create(*, actor: Actor, user: User, workspace: Workspace, **fields: Any) -> Layer:
    allowed = workspace_actions(actor, workspace.pk)
    if not allowed:
        raise NotFound()
    if WorkspaceAction.CREATE not in allowed:
        raise PermissionDenied("Viewers cannot create layers.")
    source_type = fields.get("source_type", SourceType.VECTOR)
    fields.setdefault("style_config", {})
    if source_type != SourceType.VECTOR:
        fields.setdefault("source_config", None)
    layer = Layer(workspace=workspace, created_by=user, **_validated_blobs(fields, source_type, {}))
    layer.save()
    return layer


@transaction.atomic
def layer_update(*, access: LayerAccess, user: User, fields: dict[str, Any]) -> Layer:
    layer = access.layer
    unknown = set(fields) - LAYER_CONTENT_FIELDS - LAYER_MANAGE_FIELDS
    if unknown:
        raise ApplicationError("This field cannot be changed.", field=sorted(unknown)[0])
    needed = LayerAction.MANAGE if set(fields) & LAYER_MANAGE_FIELDS else LayerAction.EDIT
    if not access.allows(needed):
        raise PermissionDenied(f"You may not {needed} this layer.")
    clean = _validated_blobs(fields, layer.source_type, layer.attribute_schema)
    for name, value in clean.items():
        setattr(layer, name, value)
    layer.save(update_fields=[*fields, "updated_at"])
    if set(fields) & TILE_AFFECTING_FIELDS:
        # Tiles depend on these (attributes sent, clusters, zoom rules): a new version, new tile keys.
        Layer.objects.for_workspace(layer.workspace_id).filter(pk=layer.pk).update(data_version=F("data_version") + 1)
        layer.refresh_from_db(fields=["data_version"])
        transaction.on_commit(lambda: _schedule_tiling(layer))
    # Style and legend travel with the event so open maps restyle without a reload; the rest is refetched.
    drawn = {name: clean[name] for name in sorted(LAYER_CONTENT_FIELDS & set(clean))}
    _layer_event(access, user, "layer.updated", {"layer": str(layer.pk), "fields": sorted(fields), **drawn})
    return layer


@transaction.atomic
def layer_delete(*, access: LayerAccess, user: User) -> None:
    if not access.allows(LayerAction.MANAGE):
        raise PermissionDenied("You may not delete this layer.")
    _layer_event(access, user, "layer.deleted", {"layer": str(access.layer.pk)})
    if access.layer.storage_bucket != storage.SHARED_BUCKET:
        storage.own_buckets_empty([access.layer.storage_bucket])
        storage.unused_partitions_drop_later()
    point_columns_remove_later([access.layer.pk])
    access.layer.delete()


def _layer_event(access: LayerAccess, user: User | None, type: str, payload: dict[str, Any]) -> None:
    map_ids = [m.pk for m in access.maps]
    if map_ids:
        map_events_append(
            workspace_id=access.layer.workspace_id,
            map_ids=map_ids,
            type=type,
            payload=payload,
            actor_id=getattr(user, "pk", None),
        )


# --- features -------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureInput:
    """A feature as a client sent it, before validation."""

    geometry: Any
    properties: Any
    external_id: str | None = None


def _require_edit(access: LayerAccess) -> None:
    if access.layer.source_type != SourceType.VECTOR:
        raise ApplicationError("Only vector layers hold features.", field="layer")
    if not access.allows(LayerAction.EDIT):
        raise PermissionDenied("You may not edit this layer's features.")


def _locked_layer(layer: Layer) -> Layer:
    locked = Layer.objects.for_workspace(layer.workspace_id).select_for_update().filter(pk=layer.pk).first()
    if locked is None:
        raise NotFound()
    return locked


_TOUCH_LAYER_SQL = """
UPDATE layers_layer SET
    data_version = data_version + 1,
    updated_at = %(now)s,
    feature_count = feature_count + %(count_delta)s,
    attribute_schema = %(schema)s::jsonb,
    extent = CASE WHEN NOT %(grow)s THEN extent ELSE (
        SELECT ST_MakeEnvelope(x0 - pad, y0 - pad, x1 + pad, y1 + pad, 4326)
        FROM (
            SELECT *, CASE WHEN x0 = x1 OR y0 = y1 THEN 1e-7 ELSE 0 END AS pad  -- a point: pad to a polygon
            FROM (
                SELECT least(%(xmin)s, ST_XMin(extent)) AS x0, least(%(ymin)s, ST_YMin(extent)) AS y0,
                       greatest(%(xmax)s, ST_XMax(extent)) AS x1, greatest(%(ymax)s, ST_YMax(extent)) AS y1
            ) AS bounds  -- LEAST and GREATEST skip the NULLs of a layer without an extent yet
        ) AS padded
    ) END
WHERE id = %(layer)s AND workspace_id = %(workspace)s
  AND attribute_schema = %(seen_schema)s::jsonb AND geometry_type = %(seen_family)s
RETURNING feature_count
"""


def _layer_bumped(layer: Layer, *, schema: dict[str, str], count_delta: int, box: list[float] | None) -> int | None:
    """The layer's new feature count, or None when its schema or geometry type is no longer `layer`'s."""
    params = {
        "layer": layer.pk,
        "workspace": layer.workspace_id,
        "now": timezone.now(),
        "count_delta": count_delta,
        "schema": json.dumps(schema),
        "seen_schema": json.dumps(layer.attribute_schema),
        "seen_family": layer.geometry_type,
        "grow": box is not None,
        **dict(zip(("xmin", "ymin", "xmax", "ymax"), box or [0.0, 0.0, 0.0, 0.0], strict=True)),
    }
    with connection.cursor() as cursor:
        cursor.execute(_TOUCH_LAYER_SQL, params)
        row = cursor.fetchone()
    return None if row is None else row[0]


def _touch_layer(
    layer: Layer,
    *,
    schema: dict[str, str],
    count_delta: int,
    geometries: list[GEOSGeometry],
    revalidate: Callable[[Layer], dict[str, str]] | None = None,
) -> None:
    """Record a change to the layer's features: version, count, extent, schema; tiling after commit.

    `layer` is the row as the write read it. A writer that did not lock it first passes
    `revalidate`: if the schema changed meanwhile, the write is checked again against the
    locked current row (and fails there, rolling back, if it no longer fits).
    """
    box = _bounding_box(geometries)
    count = _layer_bumped(layer, schema=schema, count_delta=count_delta, box=box)
    if count is None:
        if revalidate is None:
            raise NotFound()  # the caller held the row lock: only a deleted layer gets here
        current = _locked_layer(layer)
        count = _layer_bumped(current, schema=revalidate(current), count_delta=count_delta, box=box)
        if count is None:
            raise NotFound()
    layer.feature_count = count
    transaction.on_commit(lambda: _schedule_tiling(layer))


def _schedule_tiling(layer: Layer) -> None:
    """After the commit: large point layers get their low-zoom aggregates rebuilt (debounced)."""
    from apps.tiles.services import layer_tiling_schedule

    layer_tiling_schedule(layer=layer)


def _bounding_box(geometries: list[GEOSGeometry]) -> list[float] | None:
    if not geometries:
        return None
    xs_min, ys_min, xs_max, ys_max = zip(*(g.extent for g in geometries), strict=True)
    return [min(xs_min), min(ys_min), max(xs_max), max(ys_max)]


def _feature_payload(feature: Feature) -> dict[str, Any]:
    return {
        "layer": str(feature.layer_id),
        "id": feature.pk,
        "version": feature.version,
        "geometry": feature.geom.json if feature.geom.num_coords <= 10_000 else None,
        "properties": feature.properties,
    }


def _validated_inputs(
    layer: Layer, inputs: list[FeatureInput], *, field: str
) -> tuple[list[tuple[GEOSGeometry, dict[str, Any], str | None]], dict[str, str]]:
    schema = dict(layer.attribute_schema)
    rows = []
    for index, item in enumerate(inputs):
        prefix = f"{field}[{index}]." if field else ""
        geometry = parse_geojson_geometry(item.geometry, field=f"{prefix}geometry", family=layer.geometry_type)
        properties = item.properties if item.properties is not None else {}
        schema = merge_properties(schema, properties, field=f"{prefix}properties")
        if item.external_id is not None and (not isinstance(item.external_id, str) or len(item.external_id) > 255):
            raise ApplicationError("Must be a string of at most 255 characters.", field=f"{prefix}external_id")
        rows.append((geometry, properties, item.external_id))
    return rows, schema


@transaction.atomic
def features_create(
    *, access: LayerAccess, user: User, inputs: list[FeatureInput], collection: bool = False
) -> list[Feature]:
    """Create one or many features, all or nothing. Errors in a collection name `features[i]`."""
    _require_edit(access)
    if not inputs:
        raise ApplicationError("No features given.", field="features")
    # The layer as read to judge access: its row is locked only when touched, after the insert.
    layer = access.layer
    field = "features" if collection else ""
    rows, schema = _validated_inputs(layer, inputs, field=field)
    manager = Feature.objects.for_workspace(layer.workspace_id)
    try:
        # No savepoint: a duplicate external_id fails the whole write, so the transaction is rolled back anyway.
        with transaction.atomic(savepoint=False):
            features = manager.bulk_create(
                [
                    Feature(
                        workspace_id=layer.workspace_id,
                        layer=layer,
                        bucket=layer.storage_bucket,  # the partition holding the layer's features
                        geom=geom,
                        properties=props,
                        external_id=external_id,
                        created_by=user,
                        updated_by=user,
                    )
                    for geom, props, external_id in rows
                ]
            )
    except IntegrityError:
        raise Conflict("A feature with this external_id already exists in the layer.", field="external_id") from None
    _touch_layer(
        layer,
        schema=schema,
        count_delta=len(features),
        geometries=[row[0] for row in rows],
        revalidate=lambda current: _validated_inputs(current, inputs, field=field)[1],
    )
    if len(features) == 1:
        _layer_event(access, user, "feature.created", _feature_payload(features[0]))
    else:
        _layer_event(
            access,
            user,
            "features.created",
            {"layer": str(layer.pk), "ids": [f.pk for f in features], "count": len(features)},
        )
    return features


def _locked_feature(layer: Layer, feature_id: int, base_version: int) -> Feature:
    # Row lock first, then compare: a concurrent writer waits here and then sees the new version.
    feature = (
        Feature.objects.for_workspace(layer.workspace_id)
        .select_for_update()
        .filter(pk=feature_id, layer=layer, bucket=layer.storage_bucket)
        .first()
    )
    if feature is None:
        raise NotFound()
    if feature.version != base_version:
        raise StaleVersion(
            f"The feature changed since version {base_version}; it is now at version {feature.version}.",
            extra={"current_version": feature.version, "feature_id": feature.pk},
        )
    return feature


def _merged_properties(current: dict[str, Any], patch: Any, *, replace: bool) -> Any:
    """PUT replaces; PATCH is a JSON merge patch (RFC 7386): null removes a property."""
    if replace or not isinstance(patch, dict):
        return patch
    merged = {**current, **patch}
    return {name: value for name, value in merged.items() if value is not None}


@transaction.atomic
def feature_update(
    *,
    access: LayerAccess,
    user: User,
    feature_id: int,
    base_version: int,
    geometry: Any = None,
    properties: Any = None,
    replace: bool = False,
) -> Feature:
    """Compare-and-swap on `version`: 412 (StaleVersion) if someone else wrote first."""
    _require_edit(access)
    layer = _locked_layer(access.layer)
    feature = _locked_feature(layer, feature_id, base_version)
    schema = dict(layer.attribute_schema)
    if geometry is not None or replace:
        feature.geom = parse_geojson_geometry(geometry, field="geometry", family=layer.geometry_type)
    if properties is not None or replace:
        new_properties = _merged_properties(feature.properties, properties or {}, replace=replace)
        schema = merge_properties(schema, new_properties, field="properties")
        feature.properties = new_properties
    feature.version = base_version + 1
    feature.updated_by = user
    feature.save(update_fields=["geom", "properties", "version", "updated_by", "updated_at"])
    _touch_layer(layer, schema=schema, count_delta=0, geometries=[feature.geom])
    _layer_event(access, user, "feature.updated", _feature_payload(feature))
    return feature


@transaction.atomic
def feature_delete(*, access: LayerAccess, user: User, feature_id: int, base_version: int) -> None:
    _require_edit(access)
    layer = _locked_layer(access.layer)
    feature = _locked_feature(layer, feature_id, base_version)
    feature.delete()
    _touch_layer(layer, schema=layer.attribute_schema, count_delta=-1, geometries=[])
    _layer_event(access, user, "feature.deleted", {"layer": str(layer.pk), "id": feature_id, "version": base_version})
