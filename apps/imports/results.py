"""The result an import job keeps: totals, and per source layer the Meridian layer it became with its counts."""

from __future__ import annotations

from collections import Counter

from apps.imports.preparation import PreparedLayer
from apps.imports.safety import SourceFormat
from apps.imports.types import ImportMode, ImportResult, LayerResult
from apps.layers.models import Layer

_UPSERT_COUNTS = ("inserted", "updated", "unchanged", "deleted")


def new_layer_name(name: str, source_layer: str | None) -> str:
    """The requested name; with several source layers, each layer's name follows it."""
    return name[:200] if source_layer is None else f"{name[:150]} — {source_layer[:45]}"


def layer_result(prepared: PreparedLayer, *, layer: Layer) -> LayerResult:
    return {
        "source_layer": prepared.source_layer,
        "layer": str(layer.pk),
        "name": layer.name,
        "read": prepared.read,
        "imported": prepared.counts.imported,
        "repaired": prepared.counts.repaired,
        "skipped": prepared.counts.skipped,
    }


def import_result(*, mode: ImportMode, source_format: SourceFormat, entries: list[LayerResult]) -> ImportResult:
    """Totals over the job's layers, and each layer's own counts in `layer_results`."""
    skipped: Counter[str] = Counter()
    for entry in entries:
        skipped.update(entry["skipped"])
    result: ImportResult = {
        "mode": mode.value,
        "format": source_format.key,
        "source_layer": entries[0]["source_layer"] if len(entries) == 1 else None,
        "read": sum(e["read"] for e in entries),
        "imported": sum(e["imported"] for e in entries),
        "repaired": sum(e["repaired"] for e in entries),
        "skipped": dict(skipped),
        "layer": entries[0]["layer"],
        "layers": [e["layer"] for e in entries],
        "layer_results": entries,
    }
    if mode == ImportMode.UPSERT:  # upserts change one layer: its counts, at the top level as before
        result.update({name: entries[0][name] for name in _UPSERT_COUNTS})  # type: ignore[typeddict-item]
    return result
