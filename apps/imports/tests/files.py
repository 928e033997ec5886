"""Small import fixtures, built by the tests themselves (GDAL writes the binary formats)."""

from __future__ import annotations

import io
import json
import math
import stat
import subprocess
import zipfile
from pathlib import Path
from typing import Any

HELSINKI_POINTS = [
    ("Senate Square", 24.9525, 60.1694, 1640, True, "2020-05-01"),
    ("Kamppi", 24.9316, 60.1688, 2006, False, "2021-06-02"),
    ("Kallio Church", 24.9496, 60.1841, 1912, True, "2019-07-03"),
]


def point_features(rows: list[tuple[Any, ...]] = HELSINKI_POINTS) -> list[dict[str, Any]]:
    return [
        {
            "type": "Feature",
            "properties": {"name": name, "year": year, "open": is_open, "since": since},
            "geometry": {"type": "Point", "coordinates": [lon, lat]},
        }
        for name, lon, lat, year, is_open, since in rows
    ]


def geojson(features: list[dict[str, Any]], **extra: Any) -> bytes:
    return json.dumps({"type": "FeatureCollection", **extra, "features": features}).encode()


def polygon_feature(name: str, ring: list[list[float]]) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"name": name}, "geometry": {"type": "Polygon", "coordinates": [ring]}}


SQUARE = [[24.90, 60.15], [24.91, 60.15], [24.91, 60.16], [24.90, 60.16], [24.90, 60.15]]
BOWTIE = [[24.92, 60.15], [24.93, 60.16], [24.93, 60.15], [24.92, 60.16], [24.92, 60.15]]  # self-intersecting


def csv_latlon() -> bytes:
    lines = ["name,lat,lon,year"] + [f"{n},{lat},{lon},{y}" for n, lon, lat, y, _, _ in HELSINKI_POINTS]
    return ("\n".join(lines) + "\n").encode()


def csv_wkt() -> bytes:
    lines = ["id,label,WKT", '1,a,"POINT (24.95 60.17)"', '2,b,"LINESTRING (24.9 60.1, 25.0 60.2)"']
    return ("\n".join(lines) + "\n").encode()


def ogr2ogr(*args: str) -> None:
    subprocess.run(["ogr2ogr", *args], check=True, capture_output=True)  # noqa: S603, S607


def zip_of(paths: list[Path]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in paths:
            archive.write(path, f"data/{path.name}")
    return buffer.getvalue()


def zipped_shapefile(tmp: Path, features: list[dict[str, Any]], *, t_srs: str = "EPSG:3067", prj: bool = True) -> bytes:
    """A Shapefile in ETRS-TM35FIN (so the import must reproject), zipped under a folder."""
    source = tmp / "source.geojson"
    source.write_bytes(geojson(features))
    ogr2ogr("-f", "ESRI Shapefile", str(tmp / "places.shp"), str(source), "-t_srs", t_srs)
    parts = [tmp / f"places.{ext}" for ext in ("shp", "shx", "dbf", "prj", "cpg") if (tmp / f"places.{ext}").exists()]
    return zip_of([p for p in parts if prj or p.suffix != ".prj"])


def two_layer_geopackage(tmp: Path) -> bytes:
    points = tmp / "points.geojson"
    points.write_bytes(geojson(point_features()))
    areas = tmp / "areas.geojson"
    areas.write_bytes(geojson([polygon_feature("square", SQUARE)]))
    target = tmp / "two.gpkg"
    ogr2ogr("-f", "GPKG", str(target), str(points), "-nln", "places")
    ogr2ogr("-f", "GPKG", "-update", str(target), str(areas), "-nln", "areas", "-t_srs", "EPSG:3857")
    return target.read_bytes()


def raw_zip(members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in members:
            archive.writestr(info, data)
    return buffer.getvalue()


def symlink_member(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


VRT_READING_PASSWD = b"""<OGRVRTDataSource>
  <OGRVRTLayer name="passwd"><SrcDataSource>CSV:/etc/passwd</SrcDataSource></OGRVRTLayer>
</OGRVRTDataSource>
"""

VRT_VSICURL = b"""<OGRVRTDataSource>
  <OGRVRTLayer name="remote"><SrcDataSource>/vsicurl/http://169.254.169.254/latest/meta-data</SrcDataSource></OGRVRTLayer>
</OGRVRTDataSource>
"""

BILLION_LAUGHS_KML = b"""<?xml version="1.0"?>
<!DOCTYPE kml [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<kml xmlns="http://www.opengis.net/kml/2.2"><Document><Placemark><name>&lol4;</name>
<Point><coordinates>24.9,60.1</coordinates></Point></Placemark></Document></kml>
"""

SIMPLE_KML = b"""<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2"><Document>
<Placemark><name>Senate Square</name><Point><coordinates>24.9525,60.1694</coordinates></Point></Placemark>
<Placemark><name>Kamppi</name><Point><coordinates>24.9316,60.1688</coordinates></Point></Placemark>
</Document></kml>
"""


def flatgeobuf(tmp: Path, features: list[dict[str, Any]]) -> bytes:
    source = tmp / "source.geojson"
    source.write_bytes(geojson(features))
    ogr2ogr("-f", "FlatGeobuf", str(tmp / "places.fgb"), str(source))
    return (tmp / "places.fgb").read_bytes()


def geopackage_of_three_and_an_empty_layer(tmp: Path) -> bytes:
    """places (3 points), areas (1 polygon, EPSG:3857), routes (1 line) and empty (no features)."""
    target = tmp / "four.gpkg"
    target.write_bytes(two_layer_geopackage(tmp))
    routes = tmp / "routes.geojson"
    line = {"type": "LineString", "coordinates": [[24.93, 60.16], [24.94, 60.17], [24.95, 60.18]]}
    routes.write_bytes(geojson([{"type": "Feature", "properties": {"route": "Walk", "km": 2.5}, "geometry": line}]))
    ogr2ogr("-f", "GPKG", "-update", str(target), str(routes), "-nln", "routes")
    ogr2ogr("-f", "GPKG", "-update", str(target), str(routes), "-nln", "empty", "-where", "1 = 0")
    return target.read_bytes()


def geopackage_with_a_layer_in_metres_labelled_degrees(tmp: Path) -> bytes:
    """places (fine) and metres (projected coordinates declared as WGS 84: out of range)."""
    target = tmp / "bad.gpkg"
    target.write_bytes(two_layer_geopackage(tmp))
    metres = tmp / "metres.geojson"
    metres.write_bytes(geojson(point_features([("Helsinki in metres", 385000.0, 6672000.0, 1, True, "2020-01-01")])))
    ogr2ogr("-f", "GPKG", "-update", str(target), str(metres), "-nln", "metres", "-a_srs", "EPSG:4326")
    return target.read_bytes()


GPX = b"""<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="meridian-tests" xmlns="http://www.topografix.com/GPX/1/1">
<wpt lat="60.1694" lon="24.9525"><ele>12.5</ele><name>Senate Square</name></wpt>
<wpt lat="60.1688" lon="24.9316"><name>Kamppi</name></wpt>
<trk><name>Morning walk</name><trkseg>
<trkpt lat="60.1600" lon="24.9300"><ele>5</ele></trkpt>
<trkpt lat="60.1700" lon="24.9400"><ele>7</ele></trkpt>
<trkpt lat="60.1800" lon="24.9500"><ele>9</ele></trkpt>
</trkseg></trk>
</gpx>
"""

KML_WITH_FOLDERS = b"""<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2"><Document><name>Helsinki</name>
<Folder><name>Sights</name>
<Placemark><name>Senate Square</name><Point><coordinates>24.9525,60.1694</coordinates></Point></Placemark>
<Placemark><name>Kallio Church</name><Point><coordinates>24.9496,60.1841</coordinates></Point></Placemark>
</Folder>
<Folder><name>Parks</name>
<Placemark><name>Esplanadi</name><Polygon><outerBoundaryIs><LinearRing><coordinates>
24.944,60.167 24.952,60.167 24.952,60.168 24.944,60.168 24.944,60.167
</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>
</Folder>
</Document></kml>
"""


def kmz(kml: bytes) -> bytes:
    """A KMZ as Google Earth writes it: doc.kml and a file the import must ignore."""
    return raw_zip([("doc.kml", kml), ("files/icon.png", b"\x89PNG\r\n\x1a\n")])


def million_vertex_polygon(vertices: int = 1_000_000) -> bytes:
    """One polygon: a circle of `vertices` points around Helsinki (valid, just enormous)."""
    step = 2 * math.pi / (vertices - 1)
    ring = ",".join(
        f"[{24.95 + 0.05 * math.cos(i * step):.7f},{60.17 + 0.025 * math.sin(i * step):.7f}]"
        for i in range(vertices - 1)
    )
    first = "[25.0000000,60.1700000]"
    return (
        b'{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"huge"},'
        b'"geometry":{"type":"Polygon","coordinates":[[' + ring.encode() + b"," + first.encode() + b"]]}}]}"
    )
