# ruff: noqa: S608 -- SQL is assembled only from this module's constants (schema, zooms, layer names); values are bound
"""The OpenMapTiles layers of a basemap tile and the one statement that renders it.

Each layer reads the table apps/tiles/basemap/openmaptiles.py prepared for it
(EPSG:3857, a `minzoom` per row, OpenMapTiles attribute names); `tile_sql()`
renders a tile as one `ST_AsMVT` per layer, concatenated (a vector tile is a
sequence of layers), in the same style as apps/tiles/mvt.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from apps.tiles.basemap.openmaptiles import BUFFER, EXTENT, sql_in_schema

_MVT_GEOM = f"ST_AsMVTGeom({{geom}}, bounds.envelope, {EXTENT}, {BUFFER}, true)"


def _geom(expression: str) -> str:
    return _MVT_GEOM.format(geom=expression)


@dataclass(frozen=True)
class OmtLayer:
    """One OpenMapTiles layer: its rows for the tile in `bounds`, at zoom %(z)s."""

    name: str
    description: str
    fields: dict[str, str]  # attribute -> type, for the MBTiles `vector_layers`
    minzoom: int
    maxzoom: int
    rows: str = field(repr=False)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z_]+", self.name):
            raise ValueError(f"not a layer name: {self.name!r}")


def _simple(table: str, columns: str, *, points: bool = False) -> str:
    """Rows of a layer table whose minzoom is reached; points only inside the tile (no doubled labels)."""
    box = "bounds.envelope" if points else "bounds.search"
    return f"""
        SELECT {_geom("t.geom")} AS geom, {columns}
        FROM bounds, {{s}}.{table} AS t
        WHERE t.geom && {box} AND t.minzoom <= %(z)s"""


_NAMES = 't.name, t.name_en, t.name AS "name:latin"'
_TEXT, _NUM = "String", "Number"
_NAME_FIELDS = {"name": _TEXT, "name_en": _TEXT, "name:latin": _TEXT}

LAYERS: tuple[OmtLayer, ...] = (
    OmtLayer(
        "water",
        "Oceans (the complement of Natural Earth or OSM land) and OSM lakes, ponds, docks and pools.",
        {"class": _TEXT, "intermittent": _NUM, "brunnel": _TEXT},
        0,
        14,
        # The sea is whatever of the tile no land piece covers: no world polygon, no seams.
        """
        SELECT """
        + _geom("coalesce(ST_Difference(bounds.search, land.geom), bounds.search)")
        + """ AS geom, 'ocean' AS class, 0 AS intermittent, NULL::text AS brunnel
        FROM bounds, LATERAL (
            SELECT ST_Union(l.geom) AS geom FROM {s}.land AS l
            WHERE l.geom && bounds.search AND %(z)s BETWEEN l.minzoom AND l.maxzoom
        ) AS land
        UNION ALL"""
        + _simple("water", "t.class, t.intermittent, t.brunnel"),
    ),
    OmtLayer("waterway", "Rivers, canals and streams.",
             {"class": _TEXT, "brunnel": _TEXT, "intermittent": _NUM, **_NAME_FIELDS}, 12, 14,
             _simple("waterway", f"t.class, t.brunnel, t.intermittent, {_NAMES}")),
    OmtLayer("water_name", "Labels of named lakes and ponds.", {"class": _TEXT, **_NAME_FIELDS}, 13, 14,
             _simple("water_name", f"t.class, {_NAMES}", points=True)),
    OmtLayer("landcover", "Natural land cover: grass, wood, sand, wetland…", {"class": _TEXT, "subclass": _TEXT},
             11, 14, _simple("landcover", "t.class, t.subclass")),
    OmtLayer("landuse", "Land use: residential, commercial, railway, schools, hospitals…", {"class": _TEXT},
             11, 14, _simple("landuse", "t.class")),
    OmtLayer("park", "Parks and protected areas.", {"class": _TEXT, **_NAME_FIELDS}, 11, 14,
             _simple("park", f"t.class, {_NAMES}")),
    OmtLayer("building", "Building footprints with heights for extrusion.",
             {"render_height": _NUM, "render_min_height": _NUM}, 13, 14,
             _simple("building", "t.render_height, t.render_min_height")),
    OmtLayer("transportation", "Roads, paths, railways, tram lines, ferries and piers.",
             {"class": _TEXT, "subclass": _TEXT, "ramp": _NUM, "brunnel": _TEXT, "oneway": _NUM, "service": _TEXT,
              "layer": _NUM}, 4, 14,
             _simple("transportation", "t.class, t.subclass, t.ramp, t.brunnel, t.oneway, t.service, t.layer")),
    OmtLayer("transportation_name", "Street names and refs, one line per named street.",
             {"class": _TEXT, "subclass": _TEXT, "ref": _TEXT, "ref_length": _NUM, **_NAME_FIELDS}, 12, 14,
             _simple("transportation_name", f"t.class, t.subclass, t.ref, t.ref_length, {_NAMES}")),
    OmtLayer("boundary", "Country borders (admin_level 2) from Natural Earth.",
             {"admin_level": _NUM, "maritime": _NUM, "disputed": _NUM, "adm0_l": _TEXT, "adm0_r": _TEXT}, 0, 14,
             f"""
        SELECT {_geom("t.geom")} AS geom, 2 AS admin_level, 0 AS maritime, 0 AS disputed, t.adm0_l, t.adm0_r
        FROM bounds, {{s}}.boundary AS t
        WHERE t.geom && bounds.search AND %(z)s BETWEEN t.minzoom AND t.maxzoom"""),
    # Order matters: MapLibre places labels in tile order, so important places go first.
    OmtLayer("place", "Countries (Natural Earth), cities (GeoNames) and OSM place names.",
             {"class": _TEXT, "rank": _NUM, "capital": _NUM, "iso_a2": _TEXT, **_NAME_FIELDS}, 0, 14,
             _simple("place", f"t.class, t.rank, t.capital, t.iso_a2, {_NAMES}", points=True)
             + " ORDER BY t.rank, t.class"),
    OmtLayer("poi", "Points of interest; rank orders them within the tile.",
             {"class": _TEXT, "subclass": _TEXT, "rank": _NUM, **_NAME_FIELDS}, 14, 14,
             f"""
        SELECT {_geom("t.geom")} AS geom, t.class, t.subclass, {_NAMES},
               (row_number() OVER (ORDER BY t.priority, t.name IS NULL, t.class, t.name))::int AS rank
        FROM bounds, {{s}}.poi AS t
        WHERE t.geom && bounds.envelope AND t.minzoom <= %(z)s"""),
)  # fmt: skip

_TILE_SQL = """
WITH bounds AS (
    SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS envelope,
           ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(margin)s) AS search
)
SELECT {layers}
"""
_LAYER_MVT = f"""
    (SELECT coalesce(ST_AsMVT(rows.*, '{{name}}', {EXTENT}, 'geom'), ''::bytea)
     FROM ({{rows}}
     ) AS rows WHERE rows.geom IS NOT NULL)"""


def layers_at(z: int) -> list[OmtLayer]:
    return [layer for layer in LAYERS if layer.minzoom <= z <= layer.maxzoom]


def tile_sql(z: int) -> str:
    """One statement for every tile of zoom `z` (params: z, x, y, margin): the layers' MVTs, concatenated.

    Each layer table's GiST index answers `geom && bounds.search`.
    """
    parts = [_LAYER_MVT.format(name=layer.name, rows=layer.rows) for layer in layers_at(z)]
    return sql_in_schema(_TILE_SQL.format(layers="\n    || ".join(parts)))


def vector_layers(*, minzoom: int, maxzoom: int) -> list[dict[str, object]]:
    """The MBTiles metadata `vector_layers` (TileJSON 3), clamped to the zooms built."""
    return [
        {
            "id": layer.name,
            "description": layer.description,
            "fields": layer.fields,
            "minzoom": max(layer.minzoom, minzoom),
            "maxzoom": min(layer.maxzoom, maxzoom),
        }
        for layer in LAYERS
        if layer.minzoom <= maxzoom and layer.maxzoom >= minzoom
    ]
