"""One staged source layer → rows ready to load: checked, repaired, counted, its schema inferred.

Nothing here touches `layers_feature`; services.py loads every prepared layer of a
job in one transaction, so a multi-layer import shows all its layers or none.
"""

from __future__ import annotations

from dataclasses import dataclass

from apps.imports import limits, loading
from apps.imports.errors import ImportRefused
from apps.imports.selection import SelectedLayer
from apps.layers.models import GeometryType, Layer


@dataclass(frozen=True)
class PreparedLayer:
    source_layer: str | None
    tables: loading.StagingTables
    read: int
    counts: loading.RepairCounts
    schema: dict[str, str]  # the layer's attribute schema after the load
    family: GeometryType


@dataclass(frozen=True)
class Target:
    """Where the rows go: a new layer (layer None), or the existing one whose family rules and schema may be kept."""

    layer: Layer | None
    keeps_features: bool  # append and upsert: the layer's schema is extended, not replaced
    key: str | None  # upsert: the attribute matched against external_id


def layer_prepare(
    tables: loading.StagingTables, *, selected: SelectedLayer, target: Target, many: bool
) -> PreparedLayer | None:
    """Check and repair the staged rows of one source layer; None for an optional layer that holds nothing.

    `many`: the job reads several layers, so a refusal names this one.
    """
    summary = loading.staged_summary(tables)
    if summary.read == 0:
        if selected.optional:
            tables.drop()
            return None
        named = f"The layer {selected.name!r}" if selected.name is not None else "The file"
        raise ImportRefused(f"{named} holds no features.")
    try:
        return _prepared(tables, summary, selected=selected, target=target)
    except ImportRefused as exc:
        if many and selected.name is not None:
            raise ImportRefused(f"Layer {selected.name!r}: {exc.message}", field=exc.field) from None
        raise


def _prepared(
    tables: loading.StagingTables, summary: loading.StagedSummary, *, selected: SelectedLayer, target: Target
) -> PreparedLayer:
    loading.refuse_out_of_range(summary)
    limits.refuse_oversized_features(tables.staging)
    columns = loading.staged_columns(tables)
    key, layer = target.key, target.layer
    if key is not None:
        _refuse_missing_key(key, columns)
    family = GeometryType(layer.geometry_type) if layer else summary.family
    counts = loading.features_prepare(tables, columns=columns, family=family, key=key)
    if counts.imported == 0:
        raise ImportRefused(f"None of the {summary.read} features can be imported: {_reasons(counts.skipped)}.")
    if key is not None:
        loading.refuse_duplicate_keys(tables, key=key)
    incoming = loading.schema_of(columns)
    schema = loading.schema_merged(layer.attribute_schema, incoming) if layer and target.keeps_features else incoming
    return PreparedLayer(
        source_layer=selected.name, tables=tables, read=summary.read, counts=counts, schema=schema, family=family
    )


def _refuse_missing_key(key: str, columns: list[loading.Column]) -> None:
    if key not in {column.name for column in columns}:
        names = ", ".join(column.name for column in columns[:20]) or "none"
        raise ImportRefused(f"The file has no attribute {key!r} to match features by (it has: {names}).")


def _reasons(skipped: dict[str, int]) -> str:
    return ", ".join(f"{count} {reason}" for reason, count in sorted(skipped.items())) or "no geometry"
