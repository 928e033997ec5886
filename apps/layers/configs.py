"""Typed shapes of a layer's JSON blobs: style, legend, metadata and source config.

Unknown keys are refused (`extra="forbid"`) so a typo is a 400, not a silent no-op.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, field_validator

from apps.core.errors import ApplicationError

Color = Annotated[str, Field(pattern=r"^#(?:[0-9a-fA-F]{3}){1,2}$|^#[0-9a-fA-F]{8}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Stop(_Strict):
    value: float | str | bool
    color: Color | None = None
    size: float | None = Field(default=None, ge=0, le=200)
    label: str | None = Field(default=None, max_length=200)


class ZoomRule(_Strict):
    """Up to `max_zoom`, draw only the features matching `where` (tile filter syntax).

    E.g. {"max_zoom": 6, "where": {"voltage__gte": "345000"}}: only the main grid at low zoom.
    """

    max_zoom: int = Field(ge=0, le=22)
    where: dict[Annotated[str, Field(max_length=120)], Annotated[str, Field(max_length=500)]] = Field(
        min_length=1, max_length=10
    )


class StyleConfig(_Strict):
    """How a vector layer is drawn. `simple` uses one colour; the others key on `property`."""

    type: Literal["simple", "categorized", "graduated", "heatmap"] = "simple"
    property: str | None = Field(default=None, max_length=100)
    color: Color = "#3b82f6"
    stroke_color: Color = "#1e3a8a"
    stroke_width: float = Field(default=1.0, ge=0, le=50)
    opacity: float = Field(default=0.8, ge=0, le=1)
    size: float = Field(default=6.0, ge=0, le=200)
    stops: list[Stop] = Field(default_factory=list, max_length=256)
    label_property: str | None = Field(default=None, max_length=100)
    cluster: bool | None = None  # None: cluster large point layers (see apps/tiles/mvt.py)
    cluster_max_zoom: int = Field(default=11, ge=0, le=20)
    zoom_rules: list[ZoomRule] = Field(default_factory=list, max_length=10)
    # Numeric attributes averaged in each cluster (e.g. price).
    cluster_properties: list[Annotated[str, Field(max_length=100)]] = Field(default_factory=list, max_length=10)
    min_zoom: float = Field(default=0, ge=0, le=24)
    max_zoom: float = Field(default=24, ge=0, le=24)

    @field_validator("stops")
    @classmethod
    def _stops_need_property(cls, stops: list[Stop], info: Any) -> list[Stop]:
        if stops and not info.data.get("property"):
            raise ValueError("stops need a property to key on")
        return stops


class LegendItem(_Strict):
    label: str = Field(max_length=200)
    color: Color | None = None


class LegendConfig(_Strict):
    title: str | None = Field(default=None, max_length=200)
    items: list[LegendItem] = Field(default_factory=list, max_length=256)
    show: bool = True


class LayerMetadata(_Strict):
    author: str | None = Field(default=None, max_length=300)
    organisation: str | None = Field(default=None, max_length=300)
    doi: str | None = Field(default=None, pattern=r"^10\.\d{4,9}/\S+$")
    citation: str | None = Field(default=None, max_length=2000)
    license: str | None = Field(default=None, max_length=200)
    source_url: HttpUrl | None = None
    keywords: list[Annotated[str, Field(max_length=60)]] = Field(default_factory=list, max_length=50)
    updated: str | None = Field(default=None, max_length=40)


class VectorSource(_Strict):
    # Properties sent in tiles; None sends all (large layers should choose).
    tile_attributes: list[Annotated[str, Field(max_length=100)]] | None = Field(default=None, max_length=100)


class WmsSource(_Strict):
    url: HttpUrl
    layers: str = Field(max_length=500)
    format: Literal["image/png", "image/jpeg", "image/webp"] = "image/png"
    version: Literal["1.1.1", "1.3.0"] = "1.3.0"
    transparent: bool = True
    time: str | None = Field(default=None, max_length=100)
    attribution: str | None = Field(default=None, max_length=500)


class RasterSource(_Strict):
    url: HttpUrl
    rescale: tuple[float, float] | None = None
    colormap: str | None = Field(default=None, max_length=50)
    expression: str | None = Field(default=None, max_length=300)


SOURCE_MODELS: dict[str, type[_Strict]] = {"vector": VectorSource, "wms": WmsSource, "raster": RasterSource}


def validated(model: type[BaseModel], value: Any, *, field: str) -> dict[str, Any]:
    """Validate a blob; the error names the exact key at fault (e.g. style_config.opacity)."""
    try:
        return model.model_validate(value).model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in (field, *error["loc"]))
        raise ApplicationError(error["msg"], field=where) from None


def validated_source(source_type: str, value: Any) -> dict[str, Any]:
    return validated(SOURCE_MODELS[source_type], value or {}, field="source_config")
