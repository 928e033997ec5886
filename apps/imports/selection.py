"""Which layers of a source an import reads: the request's choice, checked against what the file holds.

A request names one layer (`source_layer`), several (`layers: ["a", "b"]`), every
layer (`layers: ["*"]`), or none. With none, a format with a fixed layer set (OSM
PBF, GPX) imports its default layers; any other multi-layer file must hold exactly
one layer with features. Each layer read becomes one Meridian layer, and a job's
layers appear together or not at all (services.py loads them in one transaction).

Append, replace and upsert change one existing layer, so they read exactly one.
"""

from __future__ import annotations

from dataclasses import dataclass

from apps.core.errors import ApplicationError
from apps.imports.errors import ImportRefused
from apps.imports.gdal import SourceLayer
from apps.imports.safety import SourceFormat, refuse_unsafe_layer_name
from apps.imports.types import ImportMode

ALL_LAYERS = "*"
MAX_LAYERS_PER_IMPORT = 50  # each becomes a Meridian layer; more is a mistake or an attack, not a use


@dataclass(frozen=True)
class SelectedLayer:
    name: str | None  # None: the only layer of a single-layer format
    optional: bool  # chosen by default or by "*": skipped when it turns out empty, instead of failing the job


# --- in the request: 400s ---------------------------------------------------------------------------


def checked_layer_request(
    *, mode: ImportMode, source_layer: str | None, layers: list[str] | None, source_format: SourceFormat | None
) -> list[str] | None:
    """The requested layer names, deduplicated; refuses a request that cannot be right whatever the file holds.

    `source_format` is None for an archive, whose dataset is only known once extracted (the worker checks then).
    """
    if source_layer is not None:
        refuse_unsafe_layer_name(source_layer, field="source_layer")
    if layers is None:
        return None
    if source_layer is not None:
        raise ApplicationError("Give either source_layer or layers, not both.", field="layers")
    names = list(dict.fromkeys(name.strip() for name in layers))
    if not names or "" in names:
        raise ApplicationError("Name at least one layer, and no empty names (or '*' for every layer).", field="layers")
    if ALL_LAYERS in names and len(names) > 1:
        raise ApplicationError("'*' means every layer; send it alone.", field="layers")
    if len(names) > MAX_LAYERS_PER_IMPORT:
        raise ApplicationError(f"At most {MAX_LAYERS_PER_IMPORT} layers per import.", field="layers")
    for name in names:
        refuse_unsafe_layer_name(name, field="layers")
    if mode != ImportMode.NEW and (len(names) > 1 or names == [ALL_LAYERS]):
        raise ApplicationError(
            f"An import in mode {mode.value} changes one layer: name one source layer, "
            "or import several layers as new ones (mode new).",
            field="layers",
        )
    if source_format is not None:
        refuse_layers_of_single_layer_format(names, source_format, field="layers")
    return names


def refuse_layers_of_single_layer_format(names: list[str] | None, source_format: SourceFormat, *, field: str) -> None:
    if names and not source_format.multi_layer:
        raise ImportRefused(
            f"A {source_format.label} file holds one layer; layers applies to GeoPackage, KML, GPX and OSM PBF files.",
            field=field,
        )


# --- in the worker: against the file's layers -----------------------------------------------------


def layers_to_read(
    found: list[SourceLayer], *, source_format: SourceFormat, source_layer: str | None, layers: list[str] | None,
    single: bool,
) -> list[SelectedLayer]:  # fmt: skip
    """The layers to read, in the file's order. `single`: the mode changes one layer, so exactly one is allowed."""
    if source_layer is not None:
        return [SelectedLayer(_existing(found, [source_layer], field="source_layer")[0], optional=False)]
    if layers is not None and layers != [ALL_LAYERS]:
        return [SelectedLayer(name, optional=False) for name in _existing(found, layers, field="layers")]
    if layers == [ALL_LAYERS]:
        chosen = [layer.name for layer in found if _may_hold_features(layer, source_format)]
    elif source_format.default_layers:
        chosen = [
            layer.name
            for layer in found
            if layer.name in source_format.default_layers and _may_hold_features(layer, source_format)
        ]
    else:
        chosen = _the_only_layer_with_features(found, source_format)
    if not chosen:
        raise ImportRefused("The file holds no features.")
    if single and len(chosen) > 1:
        raise ImportRefused(
            f"The file has {len(chosen)} layers ({', '.join(chosen)}); say which one to use in source_layer.",
            field="source_layer",
        )
    return [SelectedLayer(refuse_unsafe_layer_name(name, field="layers"), optional=True) for name in chosen]


def _existing(found: list[SourceLayer], wanted: list[str], *, field: str) -> list[str]:
    names = [layer.name for layer in found]
    missing = [name for name in wanted if name not in names]
    if missing:
        listed = ", ".join(repr(name) for name in missing)
        raise ImportRefused(f"The file has no layer {listed}; it has: {', '.join(names)}.", field=field)
    return [name for name in names if name in wanted]


def _may_hold_features(layer: SourceLayer, source_format: SourceFormat) -> bool:
    # A count of -1 is unknown (the OSM driver cannot count without reading): staging finds out.
    return layer.features != 0 and layer.name not in source_format.repeating_layers


def _the_only_layer_with_features(found: list[SourceLayer], source_format: SourceFormat) -> list[str]:
    candidates = [layer.name for layer in found if _may_hold_features(layer, source_format)]
    if len(candidates) > 1:
        raise ImportRefused(
            f"The file has {len(candidates)} layers ({', '.join(candidates)}); say which one in source_layer, "
            "or import several (layers, '*' for every one).",
            field="source_layer",
        )
    return candidates
