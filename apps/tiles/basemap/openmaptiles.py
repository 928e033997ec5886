# ruff: noqa: S608 -- SQL is assembled only from this module's constants (schema, zooms, layer names); values are bound
"""OpenMapTiles-schema layer tables built from the staged sources (rendered by omt_tiles.py).

`PREPARE_SQL` turns the raw staging tables (apps/tiles/basemap/sources.py) into
one table per OpenMapTiles layer, in EPSG:3857 with a GiST index and a
`minzoom` per row, with the attribute names and values the OSM Bright style
bundled in django-tiles-gl filters on (class, subclass, brunnel, ramp, rank…),
following https://openmaptiles.org/schema/.

Zoom bands: Natural Earth 1:110m for z0-2, 1:50m for z3-4, 1:10m from z5; at
z12+ the land inside the OSM extent comes from OSM's coastline instead, and the
OSM layers (buildings, roads, landuse…) start where OpenMapTiles starts them.
"""

from __future__ import annotations

import json

from apps.tiles.basemap.sources import SCHEMA

EXTENT = 4096
BUFFER = 64
DETAIL_MINZOOM = 12  # from here on, OSM's coastline replaces Natural Earth's inside the extract
# Natural Earth scale per band of zooms.
LAND_BANDS: dict[str, tuple[int, int]] = {"110m": (0, 2), "50m": (3, 4), "10m": (5, DETAIL_MINZOOM - 1)}
BORDER_BANDS: dict[str, tuple[int, int]] = {"110m": (0, 2), "50m": (3, 4), "10m": (5, 14)}
# The Mercator band: Antarctica reaches -90, which EPSG:3857 cannot represent.
MERCATOR_LAT = 85.0511287798066
_MERCATOR_BAND = f"ST_MakeEnvelope(-180, -{MERCATOR_LAT}, 180, {MERCATOR_LAT}, 4326)"


def sql_in_schema(text: str) -> str:
    return text.replace("{s}", SCHEMA)


# --- land and sea --------------------------------------------------------------------------------

_LAND_SQL = [
    "CREATE UNLOGGED TABLE {s}.land (minzoom int NOT NULL, maxzoom int NOT NULL, geom geometry(Geometry, 3857))",
    *(
        # Part by part: repairing and cutting the one 1:10m MultiPolygon whole takes 20 s, its parts 2 s.
        # A band no world zoom uses is needed only around the street-level area.
        f"""
        INSERT INTO {{s}}.land (minzoom, maxzoom, geom)
        SELECT {low}, {high}, ST_Subdivide(ST_Transform(ST_CollectionExtract(
                   CASE WHEN ST_YMin(part.geom) < -{MERCATOR_LAT} OR ST_YMax(part.geom) > {MERCATOR_LAT}
                        THEN ST_Intersection(ST_MakeValid(part.geom), {_MERCATOR_BAND})
                        ELSE ST_MakeValid(part.geom) END, 3), 3857), 512)
        FROM (SELECT (ST_Dump(geom)).geom FROM {{s}}.ne_land_{scale}) AS part
        WHERE {low} <= %(world_maxzoom)s OR part.geom && ST_MakeEnvelope(%(west)s, %(south)s, %(east)s, %(north)s, 4326)
        """
        for scale, (low, high) in LAND_BANDS.items()
    ),
    # The street-level extent: where the extract's tagged nodes are.
    """
    CREATE UNLOGGED TABLE {s}.extent AS
    SELECT ST_Transform(ST_SetSRID(ST_Extent(geom)::geometry, 4326), 3857) AS geom FROM {s}.points
    """,
    # OSM has no sea polygons, only coastline ways with the land on their left. Node the
    # coastline with the extent's outline, polygonize, and call a face sea when it holds a
    # probe point set half a metre to the right of a coastline segment.
    """
    CREATE UNLOGGED TABLE {s}.coast AS
    SELECT (ST_Dump(ST_Transform(geom, 3857))).geom AS geom FROM {s}.lines WHERE "natural" = 'coastline'
    """,
    # The extract cuts coastline ways a few metres inside its edge. Carry each loose end on to
    # the edge and 2 m past it, so the noding sees a real crossing instead of a near miss.
    """
    CREATE UNLOGGED TABLE {s}.coast_connector AS
    WITH ends AS (
        SELECT ST_StartPoint(geom) AS p FROM {s}.coast WHERE NOT ST_IsClosed(geom)
        UNION ALL
        SELECT ST_EndPoint(geom) FROM {s}.coast WHERE NOT ST_IsClosed(geom)
    ), nearest AS (
        SELECT p, ST_ClosestPoint(ST_Boundary(extent.geom), p) AS q FROM ends, {s}.extent
        WHERE ST_Within(p, extent.geom) AND ST_Distance(p, ST_Boundary(extent.geom)) BETWEEN 1e-6 AND 100
    )
    SELECT ST_MakeLine(p, ST_Translate(q, (ST_X(q) - ST_X(p)) / ST_Distance(p, q) * 2,
                                          (ST_Y(q) - ST_Y(p)) / ST_Distance(p, q) * 2)) AS geom
    FROM nearest
    """,
    """
    CREATE UNLOGGED TABLE {s}.sea AS
    WITH linework AS (
        SELECT geom FROM {s}.coast
        UNION ALL SELECT geom FROM {s}.coast_connector
        UNION ALL SELECT ST_Boundary(geom) FROM {s}.extent
    ), faces AS (
        SELECT (ST_Dump(ST_Polygonize(noded.geom))).geom AS geom
        FROM (SELECT (ST_Dump(ST_Node(ST_Collect(geom)))).geom AS geom FROM linework) AS noded
    ), segments AS (
        SELECT (ST_DumpSegments(geom)).geom AS geom FROM {s}.coast
    ), probes AS (
        SELECT ST_SetSRID(ST_MakePoint(
                   (ST_X(a) + ST_X(b)) / 2 + (ST_Y(b) - ST_Y(a)) / len * 0.5,
                   (ST_Y(a) + ST_Y(b)) / 2 - (ST_X(b) - ST_X(a)) / len * 0.5), 3857) AS geom
        FROM (SELECT ST_StartPoint(geom) AS a, ST_EndPoint(geom) AS b, ST_Length(geom) AS len FROM segments) AS s
        WHERE len > 0
    )
    SELECT faces.geom FROM faces, {s}.extent
    WHERE ST_Within(ST_PointOnSurface(faces.geom), extent.geom)
      AND EXISTS (SELECT 1 FROM probes WHERE ST_Within(probes.geom, faces.geom))
    """,
    # Street-level land: Natural Earth around the extent, OSM's land inside it.
    f"""
    INSERT INTO {{s}}.land (minzoom, maxzoom, geom)
    SELECT {DETAIL_MINZOOM}, 14, ST_CollectionExtract(ST_Difference(land.geom, extent.geom), 3)
    FROM {{s}}.land, {{s}}.extent
    WHERE land.minzoom = {LAND_BANDS["10m"][0]} AND ST_DWithin(land.geom, extent.geom, 200000)
    UNION ALL
    SELECT {DETAIL_MINZOOM}, 14, ST_Subdivide(ST_CollectionExtract(
               coalesce(ST_Difference(extent.geom, (SELECT ST_Union(geom) FROM {{s}}.sea)), extent.geom), 3), 512)
    FROM {{s}}.extent
    """,
    "DELETE FROM {s}.land WHERE ST_IsEmpty(geom)",
]

# --- OSM features, OpenMapTiles classes ------------------------------------------------------------

_AREA = "ST_CollectionExtract(ST_MakeValid(ST_Transform(geom, 3857)), 3)"
_INTEGER = "CASE WHEN {col} ~ '^-?[0-9]{{1,3}}$' THEN {col}::int END"
_NUMBER = "CASE WHEN {col} ~ '^[0-9]{{1,4}}([.][0-9]+)?$' THEN {col}::float8 END"
_BRUNNEL = """CASE WHEN bridge IS NOT NULL AND bridge <> 'no' THEN 'bridge'
                   WHEN (tunnel IS NOT NULL AND tunnel <> 'no') OR covered = 'yes' THEN 'tunnel'
                   WHEN ford IS NOT NULL AND ford <> 'no' THEN 'ford' END"""

_FEATURE_SQL = [
    f"""
    CREATE UNLOGGED TABLE {{s}}.water AS
    SELECT {_AREA} AS geom, name, name_en,
           CASE WHEN leisure = 'swimming_pool' THEN 'swimming_pool'
                WHEN waterway = 'dock' OR water = 'dock' THEN 'dock'
                WHEN waterway = 'riverbank' OR water IN ('river', 'canal', 'stream') THEN 'river'
                WHEN water = 'pond' THEN 'pond'
                ELSE 'lake' END AS class,
           CASE WHEN intermittent = 'yes' THEN 1 ELSE 0 END AS intermittent,
           CASE WHEN (tunnel IS NOT NULL AND tunnel <> 'no') OR covered = 'yes' THEN 'tunnel' END AS brunnel,
           11 AS minzoom
    FROM {{s}}.multipolygons
    WHERE "natural" = 'water' OR landuse IN ('reservoir', 'basin') OR waterway IN ('riverbank', 'dock')
       OR leisure = 'swimming_pool'
    """,
    """
    CREATE UNLOGGED TABLE {s}.water_name AS
    SELECT ST_PointOnSurface(geom) AS geom, name, name_en, 'lake' AS class, 13 AS minzoom
    FROM {s}.water WHERE name IS NOT NULL AND class IN ('lake', 'pond', 'river') AND NOT ST_IsEmpty(geom)
    """,
    f"""
    CREATE UNLOGGED TABLE {{s}}.waterway AS
    SELECT ST_Transform(geom, 3857) AS geom, waterway AS class, name, name_en,
           {_BRUNNEL} AS brunnel,
           CASE WHEN intermittent = 'yes' THEN 1 ELSE 0 END AS intermittent,
           CASE waterway WHEN 'river' THEN 12 WHEN 'canal' THEN 12 WHEN 'stream' THEN 13 ELSE 14 END AS minzoom
    FROM {{s}}.lines WHERE waterway IN ('river', 'canal', 'stream', 'ditch', 'drain')
    """,
    # OpenMapTiles' landcover classes, keyed by the raw value (natural, landuse or leisure).
    f"""
    CREATE UNLOGGED TABLE {{s}}.landcover AS
    SELECT geom, class, subclass, 11 AS minzoom FROM (
        SELECT {_AREA} AS geom, subclass,
               CASE WHEN subclass IN ('farmland', 'farm', 'orchard', 'vineyard', 'plant_nursery') THEN 'farmland'
                    WHEN subclass IN ('glacier', 'ice_shelf') THEN 'ice'
                    WHEN subclass IN ('wood', 'forest') THEN 'wood'
                    WHEN subclass IN ('bare_rock', 'scree') THEN 'rock'
                    WHEN subclass IN ('fell', 'grassland', 'heath', 'scrub', 'shrubbery', 'tundra', 'grass', 'meadow',
                                      'allotments', 'park', 'village_green', 'recreation_ground', 'garden',
                                      'golf_course', 'flowerbed') THEN 'grass'
                    WHEN subclass IN ('wetland', 'bog', 'swamp', 'marsh', 'reedbed', 'tidalflat') THEN 'wetland'
                    WHEN subclass IN ('beach', 'sand', 'dune') THEN 'sand' END AS class
        FROM (SELECT geom, coalesce("natural", landuse, leisure) AS subclass FROM {{s}}.multipolygons) AS raw
    ) AS classified WHERE class IS NOT NULL
    """,
    f"""
    CREATE UNLOGGED TABLE {{s}}.landuse AS
    SELECT geom, class, 11 AS minzoom FROM (
        SELECT {_AREA} AS geom,
               CASE WHEN landuse IN ('residential', 'commercial', 'industrial', 'retail', 'railway', 'cemetery',
                                     'military', 'garages', 'quarry', 'construction', 'brownfield') THEN landuse
                    WHEN amenity IN ('school', 'university', 'kindergarten', 'college', 'library', 'hospital',
                                     'bus_station') THEN amenity
                    WHEN amenity = 'grave_yard' THEN 'cemetery'
                    WHEN leisure IN ('stadium', 'pitch', 'playground', 'track') THEN leisure
                    WHEN tourism IN ('zoo', 'theme_park') THEN tourism END AS class
        FROM {{s}}.multipolygons
    ) AS classified WHERE class IS NOT NULL
    """,
    # OSM Bright colours class `public_park` (OpenMapTiles 3.x derived it from protection_title).
    f"""
    CREATE UNLOGGED TABLE {{s}}.park AS
    SELECT {_AREA} AS geom, name, name_en,
           CASE WHEN leisure = 'park' THEN 'public_park' ELSE coalesce(boundary, leisure) END AS class,
           11 AS minzoom
    FROM {{s}}.multipolygons
    WHERE leisure IN ('park', 'nature_reserve') OR boundary IN ('national_park', 'protected_area')
    """,
    f"""
    CREATE UNLOGGED TABLE {{s}}.building AS
    SELECT {_AREA} AS geom,
           ceil(greatest(coalesce({_NUMBER.format(col="height")},
                                  {_NUMBER.format(col="building_levels")} * 3.66, 5), 1))::int AS render_height,
           floor(coalesce({_NUMBER.format(col="min_height")},
                          {_NUMBER.format(col="building_min_level")} * 3.66, 0))::int AS render_min_height,
           13 AS minzoom
    FROM {{s}}.multipolygons WHERE building IS NOT NULL AND building <> 'no'
    """,
    f"""
    CREATE UNLOGGED TABLE {{s}}.transportation AS
    SELECT *, CASE class WHEN 'motorway' THEN 4 WHEN 'trunk' THEN 5 WHEN 'primary' THEN 7 WHEN 'secondary' THEN 9
                         WHEN 'tertiary' THEN 11 WHEN 'minor' THEN 12 WHEN 'service' THEN 13 WHEN 'rail' THEN 10
                         WHEN 'transit' THEN 12 WHEN 'ferry' THEN 10 WHEN 'pier' THEN 13 ELSE 14 END AS minzoom
    FROM (
        SELECT ST_Transform(geom, 3857) AS geom, name, name_en, ref, service,
               CASE WHEN highway IN ('motorway', 'motorway_link') THEN 'motorway'
                    WHEN highway IN ('trunk', 'trunk_link') THEN 'trunk'
                    WHEN highway IN ('primary', 'primary_link') THEN 'primary'
                    WHEN highway IN ('secondary', 'secondary_link') THEN 'secondary'
                    WHEN highway IN ('tertiary', 'tertiary_link') THEN 'tertiary'
                    WHEN highway IN ('unclassified', 'residential', 'living_street', 'road') THEN 'minor'
                    WHEN highway IN ('service', 'track') THEN highway
                    WHEN highway IN ('pedestrian', 'footway', 'cycleway', 'path', 'steps', 'bridleway', 'corridor')
                         THEN 'path'
                    WHEN railway IN ('rail', 'narrow_gauge', 'preserved', 'funicular') THEN 'rail'
                    WHEN railway IN ('subway', 'light_rail', 'monorail', 'tram') THEN 'transit'
                    WHEN route = 'ferry' THEN 'ferry'
                    WHEN man_made = 'pier' THEN 'pier' END AS class,
               CASE WHEN railway IS NOT NULL THEN railway
                    WHEN highway IN ('pedestrian', 'footway', 'cycleway', 'path', 'steps', 'bridleway', 'corridor')
                         THEN highway END AS subclass,
               CASE WHEN right(highway, 5) = '_link' THEN 1 ELSE 0 END AS ramp,
               {_BRUNNEL} AS brunnel,
               CASE WHEN oneway IN ('yes', 'true', '1') THEN 1 WHEN oneway = '-1' THEN -1 ELSE 0 END AS oneway,
               {_INTEGER.format(col="layer")} AS layer
        FROM {{s}}.lines WHERE area IS NULL OR area <> 'yes'
        UNION ALL
        -- Pedestrian squares and platforms are areas (OSM Bright's highway-area).
        SELECT {_AREA}, name, name_en, NULL, NULL, 'path', highway, 0, NULL, 0, NULL
        FROM {{s}}.multipolygons WHERE highway IN ('pedestrian', 'footway', 'platform')
    ) AS classified WHERE class IS NOT NULL
    """,
    # Labels follow whole streets: the ways of one name and class are merged into lines.
    """
    CREATE UNLOGGED TABLE {s}.transportation_name AS
    SELECT merged.geom, name, name_en, ref, length(ref) AS ref_length, class, subclass, minzoom
    FROM (
        SELECT ST_LineMerge(ST_Collect(geom)) AS lines, name, name_en, ref, class, subclass, min(minzoom) AS minzoom
        FROM {s}.transportation
        WHERE (name IS NOT NULL OR ref IS NOT NULL) AND class NOT IN ('rail', 'transit', 'ferry', 'pier')
          AND ST_Dimension(geom) = 1
        GROUP BY name, name_en, ref, class, subclass
    ) AS grouped, ST_Dump(grouped.lines) AS merged
    """,
]

# --- places and points of interest ----------------------------------------------------------------

# Countries are labelled at the centre of the largest circle inside their largest part, so the
# label sits inside (a centroid can fall in the sea); rank by area, as Natural Earth's labelrank.
_PLACE_SQL = [
    f"""
    CREATE UNLOGGED TABLE {{s}}.place AS
    SELECT ST_Transform((ST_MaximumInscribedCircle(part.geom)).center, 3857) AS geom,
           'country' AS class, c.name, c.name AS name_en, g.iso_a2, NULL::int AS capital, ranked.rank,
           greatest(ranked.rank - 1, 0) AS minzoom
    FROM {{s}}.ne_countries_50m AS c
    LEFT JOIN {{s}}.gn_countries AS g ON c.id ~ '^[0-9]+$' AND g.isonumeric = c.id::int
    CROSS JOIN LATERAL (
        SELECT CASE WHEN km2 >= 2500000 THEN 1 WHEN km2 >= 700000 THEN 2 WHEN km2 >= 250000 THEN 3
                    WHEN km2 >= 75000 THEN 4 WHEN km2 >= 15000 THEN 5 ELSE 6 END AS rank
        -- degrees² to km² at the country's latitude: plenty for a rank (geography areas fail on some rings)
        FROM (SELECT ST_Area(c.geom) * 111.32 * 111.32 * cos(radians(ST_Y(ST_Centroid(c.geom)))) AS km2) AS area
    ) AS ranked
    CROSS JOIN LATERAL (
        SELECT d.geom FROM ST_Dump(c.geom) AS d ORDER BY ST_Area(d.geom) DESC LIMIT 1
    ) AS part
    WHERE c.name IS NOT NULL AND abs(ST_Y((ST_MaximumInscribedCircle(part.geom)).center)) < {MERCATOR_LAT}
    """,
    # Cities from GeoNames, unless the OSM extract has the same place (its node is better).
    """
    INSERT INTO {s}.place (geom, class, name, name_en, capital, rank, minzoom)
    SELECT ST_Transform(c.geom, 3857), CASE WHEN c.population >= 100000 THEN 'city' ELSE 'town' END,
           c.name, c.name, CASE WHEN c.capital THEN 2 END,
           CASE WHEN c.population >= 5000000 THEN 1 WHEN c.population >= 1000000 THEN 2
                WHEN c.population >= 500000 THEN 3 WHEN c.population >= 200000 THEN 4
                WHEN c.population >= 100000 THEN 5 WHEN c.population >= 50000 THEN 6 ELSE 7 END,
           CASE WHEN c.population >= 10000000 THEN 2 WHEN c.capital OR c.population >= 3000000 THEN 3
                WHEN c.population >= 1000000 THEN 4 WHEN c.population >= 500000 THEN 5
                WHEN c.population >= 200000 THEN 6 WHEN c.population >= 100000 THEN 7 ELSE 8 END
    FROM {s}.gn_cities AS c
    WHERE NOT EXISTS (
        SELECT 1 FROM {s}.points AS p
        WHERE p.place IS NOT NULL AND p.name = c.name AND ST_DWithin(p.geom::geography, c.geom::geography, 20000)
    )
    """,
    """
    INSERT INTO {s}.place (geom, class, name, name_en, capital, rank, minzoom)
    SELECT ST_Transform(geom, 3857), place, name, name_en,
           CASE WHEN capital IN ('yes', '2') THEN 2 END,
           CASE place WHEN 'city' THEN 2 WHEN 'town' THEN 4 WHEN 'suburb' THEN 8 WHEN 'village' THEN 9
                      WHEN 'quarter' THEN 10 WHEN 'neighbourhood' THEN 11 ELSE 12 END,
           CASE place WHEN 'city' THEN 3 WHEN 'town' THEN 7 WHEN 'suburb' THEN 11 WHEN 'village' THEN 11
                      WHEN 'quarter' THEN 13 WHEN 'neighbourhood' THEN 13 ELSE 14 END
    FROM {s}.points
    WHERE name IS NOT NULL AND place IN ('city', 'town', 'village', 'hamlet', 'suburb', 'quarter', 'neighbourhood',
                                         'isolated_dwelling', 'square', 'locality', 'island', 'islet')
    """,
]

# (OSM key, value or '*', OpenMapTiles class, priority: lower is labelled first). The classes are
# the sprite names of OSM Bright's `{class}_11` icons.
POI_CLASSES: tuple[tuple[str, str, str, int], ...] = (
    ("railway", "station", "railway", 1), ("railway", "halt", "railway", 2), ("railway", "tram_stop", "railway", 20),
    ("railway", "subway_entrance", "entrance", 25),
    ("amenity", "hospital", "hospital", 3), ("amenity", "townhall", "town_hall", 3),
    ("tourism", "museum", "museum", 4), ("amenity", "university", "college", 4), ("amenity", "college", "college", 5),
    ("amenity", "library", "library", 5), ("amenity", "theatre", "theatre", 5), ("amenity", "cinema", "cinema", 6),
    ("amenity", "place_of_worship", "place_of_worship", 6), ("tourism", "attraction", "attraction", 6),
    ("tourism", "gallery", "art_gallery", 6), ("amenity", "arts_centre", "art_gallery", 6),
    ("historic", "monument", "monument", 7), ("historic", "memorial", "monument", 9),
    ("historic", "castle", "castle", 5), ("amenity", "embassy", "embassy", 8),
    ("amenity", "police", "police", 8), ("amenity", "fire_station", "fire_station", 8),
    ("amenity", "post_office", "post", 8), ("amenity", "school", "school", 8),
    ("amenity", "kindergarten", "school", 12),
    ("tourism", "hotel", "lodging", 9), ("tourism", "hostel", "lodging", 10), ("tourism", "guest_house", "lodging", 10),
    ("tourism", "information", "information", 14), ("tourism", "viewpoint", "attraction", 10),
    ("tourism", "artwork", "attraction", 12), ("tourism", "zoo", "zoo", 5),
    ("leisure", "park", "park", 7), ("leisure", "garden", "garden", 9), ("leisure", "playground", "playground", 13),
    ("leisure", "stadium", "stadium", 6), ("leisure", "sports_centre", "stadium", 9), ("leisure", "pitch", "pitch", 14),
    ("leisure", "swimming_pool", "swimming", 12), ("amenity", "pharmacy", "pharmacy", 10),
    ("amenity", "doctors", "doctor", 11), ("amenity", "dentist", "dentist", 12), ("amenity", "clinic", "doctor", 11),
    ("amenity", "bank", "bank", 11), ("amenity", "restaurant", "restaurant", 12), ("amenity", "cafe", "cafe", 12),
    ("amenity", "fast_food", "fast_food", 13), ("amenity", "bar", "bar", 13), ("amenity", "pub", "beer", 13),
    ("amenity", "biergarten", "beer", 13), ("amenity", "nightclub", "music", 14),
    ("amenity", "ice_cream", "ice_cream", 14), ("amenity", "bicycle_rental", "bicycle_rental", 15),
    ("amenity", "fuel", "fuel", 12), ("amenity", "parking", "car", 16), ("amenity", "toilets", "toilet", 16),
    ("amenity", "drinking_water", "drinking_water", 17), ("amenity", "bus_station", "bus", 8),
    ("shop", "supermarket", "grocery", 11), ("shop", "convenience", "grocery", 13), ("shop", "bakery", "bakery", 13),
    ("shop", "clothes", "clothing_store", 14), ("shop", "alcohol", "alcohol_shop", 13), ("shop", "*", "shop", 15),
)  # fmt: skip

_POI_CLASS_SQL = """
CREATE UNLOGGED TABLE {s}.poi_class AS
SELECT * FROM jsonb_to_recordset(%(classes)s::jsonb) AS c(key text, value text, class text, priority int)
"""
_POI_SQL = """
CREATE UNLOGGED TABLE {s}.poi AS
WITH candidates AS (
    SELECT 'n' || ogc_fid AS source, geom, name, name_en, amenity, shop, tourism, leisure, railway, historic
    FROM {s}.points
    UNION ALL
    -- Named areas get a POI too (a museum mapped as its building).
    SELECT 'a' || ogc_fid, ST_PointOnSurface(ST_MakeValid(geom)), name, name_en, amenity, shop, tourism, leisure,
           railway, historic
    FROM {s}.multipolygons WHERE name IS NOT NULL
), tagged AS (
    SELECT source, geom, name, name_en, tag.key, tag.value
    FROM candidates,
         LATERAL (VALUES ('amenity', amenity), ('shop', shop), ('tourism', tourism), ('leisure', leisure),
                         ('railway', railway), ('historic', historic)) AS tag(key, value)
    WHERE tag.value IS NOT NULL
)
SELECT DISTINCT ON (tagged.source)
       ST_Transform(tagged.geom, 3857) AS geom, tagged.name, tagged.name_en, m.class, tagged.value AS subclass,
       m.priority, 14 AS minzoom
FROM tagged JOIN {s}.poi_class AS m ON m.key = tagged.key AND m.value IN (tagged.value, '*')
WHERE tagged.geom IS NOT NULL AND NOT ST_IsEmpty(tagged.geom)
ORDER BY tagged.source, m.value = '*', m.priority
"""

_BOUNDARY_SQL = [
    """
    CREATE UNLOGGED TABLE {s}.boundary (minzoom int, maxzoom int, adm0_l text, adm0_r text,
                                        geom geometry(Geometry, 3857))
    """,
    *(
        f"""
        INSERT INTO {{s}}.boundary (minzoom, maxzoom, adm0_l, adm0_r, geom)
        SELECT {low}, {high}, adm0_l, adm0_r,
               ST_Transform(ST_ClipByBox2D(geom, {_MERCATOR_BAND}), 3857)
        FROM {{s}}.ne_borders WHERE scale = '{scale}'
        """
        for scale, (low, high) in BORDER_BANDS.items()
    ),
    "DELETE FROM {s}.boundary WHERE ST_IsEmpty(geom)",
]

LAYER_TABLES = (
    "land", "water", "water_name", "waterway", "landcover", "landuse", "park", "building",
    "transportation", "transportation_name", "place", "poi", "boundary",
)  # fmt: skip


Statement = tuple[str, dict[str, object] | None]


def prepare_statements(*, world_maxzoom: int, detail_area: tuple[float, float, float, float]) -> list[Statement]:
    """The statements, with their parameters, that build every layer table from the staging tables, in order.

    Zooms up to `world_maxzoom` are rendered worldwide, the others only inside `detail_area` (lon/lat).
    """
    classes = [dict(zip(("key", "value", "class", "priority"), row, strict=True)) for row in POI_CLASSES]
    area = dict(zip(("west", "south", "east", "north"), detail_area, strict=True))
    land_params = {"world_maxzoom": world_maxzoom, **area}
    indexes = [f"CREATE INDEX ON {{s}}.{table} USING gist (geom)" for table in LAYER_TABLES]
    analyze = [f"ANALYZE {{s}}.{table}" for table in LAYER_TABLES]
    plain = [*_FEATURE_SQL, *_PLACE_SQL, *_BOUNDARY_SQL]
    return [
        *((sql_in_schema(sql), land_params if "%(world_maxzoom)s" in sql else None) for sql in _LAND_SQL),
        *((sql_in_schema(statement), None) for statement in plain),
        (sql_in_schema(_POI_CLASS_SQL), {"classes": json.dumps(classes)}),
        (sql_in_schema(_POI_SQL), None),
        *((sql_in_schema(statement), None) for statement in [*indexes, *analyze]),
    ]
