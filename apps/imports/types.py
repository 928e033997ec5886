"""The JSON an import keeps on its Job: what was asked (params) and what happened (result)."""

from __future__ import annotations

from enum import StrEnum
from typing import NotRequired, TypedDict


class ImportMode(StrEnum):
    NEW = "new"
    APPEND = "append"
    REPLACE = "replace"
    UPSERT = "upsert"


class ImportParams(TypedDict):
    mode: str
    layer: str | None  # append / replace: the target layer's id
    name: str  # new: the new layer's name
    source_layer: str | None
    layers: NotRequired[list[str] | None]  # several source layers, or ["*"] for every one (selection.py)
    srid: int | None
    file_name: str  # as the user named it, for display only
    file_path: str  # relative to MEDIA_ROOT; a path we built ("" for a URL until the worker fetched it)
    file_size: int
    url: NotRequired[str | None]  # a URL import: the worker fetches it through apps/core/fetch
    url_format: NotRequired[str | None]  # the format the user named for the URL, if any
    key: NotRequired[str | None]  # upsert: the attribute matched against Feature.external_id
    delete_missing: NotRequired[bool]  # upsert: delete features whose key the file lacks


class LayerResult(TypedDict):
    """What one source layer became: the Meridian layer and its counts."""

    source_layer: str | None
    layer: str
    name: str
    read: int
    imported: int
    repaired: int
    skipped: dict[str, int]  # reason → count
    inserted: NotRequired[int]
    updated: NotRequired[int]
    unchanged: NotRequired[int]
    deleted: NotRequired[int]


class ImportResult(TypedDict):
    mode: str
    format: str
    source_layer: str | None  # the one source layer read, if the job read one
    # Totals over every source layer read; `layer_results` has them per layer.
    read: int
    imported: int
    repaired: int
    skipped: dict[str, int]  # reason → count
    layer: str  # the first layer created or changed
    layers: list[str]
    layer_results: list[LayerResult]
    # upsert only: what happened to the layer's features
    inserted: NotRequired[int]
    updated: NotRequired[int]
    unchanged: NotRequired[int]
    deleted: NotRequired[int]
