"""GDAL, run as `ogrinfo` / `ogr2ogr` subprocesses with a driver allow-list and no network.

Every run gets an environment built here, never the worker's own (no secrets reach
a process parsing hostile input):

- `GDAL_SKIP` names every vector driver except the one this file's format needs
  (and PostgreSQL, the output): a file can only be opened by its own driver, so a
  VRT renamed `.geojson` fails to open instead of reading `/etc/passwd`. VRT and the
  network drivers (WFS, OAPIF, HTTP, …) are always in the list.
- HTTP goes to a closed local port and PROJ's network is off: a CRS given as a URL,
  or a grid to download, fails instead of fetching.
- Arguments are lists (no shell); the only path is one we built under MEDIA_ROOT.
- Scratch files stay in the job's work directory: it is CPL_TMPDIR, HOME and the working
  directory (the OSM driver spills its node index to CPL_TMPDIR, or to the working directory
  without it), and it is removed with the job.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from apps.core.ogr import pg_datasource
from apps.imports.errors import ImportRefused
from apps.imports.safety import SourceFormat, refuse_unsafe_layer_name

OUTPUT_DRIVER = "PostgreSQL"
# Skipped whatever the installed GDAL reports: virtual datasets and everything that talks to a network.
ALWAYS_SKIPPED = (
    "VRT", "OGR_VRT", "WFS", "OAPIF", "OGCAPI", "HTTP", "CSW", "WMS", "WMTS", "WCS", "DAAS", "EEDA",
    "Elasticsearch", "Carto", "AmigoCloud", "NGW", "PLSCENES", "CouchDB", "MongoDBv3", "GNMDatabase", "GPSBabel",
)  # fmt: skip
DISCARD_PROXY = "127.0.0.1:9"  # the discard port: nothing listens, every GDAL HTTP request fails at once
GEOMETRY_COLUMN = "_meridian_geom"
FID_COLUMN = "_meridian_fid"
CSV_OPTIONS = (
    "X_POSSIBLE_NAMES=lon,lng,long,longitude,x,easting",
    "Y_POSSIBLE_NAMES=lat,latitude,y,northing",
    "GEOM_POSSIBLE_NAMES=wkt,geom,geometry,the_geom,wkb_geometry,shape",
    "KEEP_GEOM_COLUMNS=NO",
    "AUTODETECT_TYPE=YES",
    "EMPTY_STRING_AS_NULL=YES",
)
_NO_CRS = re.compile(r"has\s+no\s+coordinate\s+system", re.IGNORECASE)
_MESSAGE = re.compile(r"(ERROR|Warning) \d+: (.*?)(?=(?:ERROR|Warning) \d+: |\Z)", re.DOTALL)
_PR_SET_PDEATHSIG = 1


class GdalError(RuntimeError):
    """GDAL failed on a file; `stderr` holds its last words."""

    def __init__(self, message: str, stderr: str) -> None:
        super().__init__(message)
        self.stderr = stderr


def tool_path(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} (GDAL) is not on PATH. On Debian: apt-get install gdal-bin")
    return path


@functools.cache
def installed_vector_drivers() -> tuple[str, ...]:
    """Short names of the vector-capable drivers this GDAL build registers."""
    result = subprocess.run(  # noqa: S603 -- fixed arguments
        [tool_path("ogrinfo"), "--formats"],
        env=_base_env(Path(tempfile.gettempdir())),
        capture_output=True,
        text=True,
        check=True,
    )
    pattern = re.compile(r"^  (.+?) -([a-z, ]+)- \(")
    return tuple(
        m.group(1) for line in result.stdout.splitlines() if (m := pattern.match(line)) and "vector" in m.group(2)
    )


def _base_env(tmp: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(tmp),
        "CPL_TMPDIR": str(tmp),
        "GDAL_HTTP_PROXY": DISCARD_PROXY,
        "GDAL_HTTP_TIMEOUT": "1",
        "GDAL_HTTP_MAX_RETRY": "0",
        "PROJ_NETWORK": "OFF",
        "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".meridian-none",
    }


def gdal_env(*, driver: str, tmp: Path) -> dict[str, str]:
    """The environment of one GDAL run that may open files with `driver` only (see the module docstring)."""
    allowed = {driver, OUTPUT_DRIVER}
    skipped = sorted((set(installed_vector_drivers()) | set(ALWAYS_SKIPPED)) - allowed)
    # Comma-separated, because driver names contain spaces ("ESRI Shapefile").
    return {**_base_env(tmp), "GDAL_SKIP": ",".join(skipped)}


def _die_with_parent() -> None:
    """In the child: get SIGKILL when the worker dies, so a killed import leaves no orphan writing."""
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


# --- listing layers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceLayer:
    name: str
    geometry: str
    features: int


def layers_of(path: Path, source_format: SourceFormat, *, tmp: Path, timeout: float) -> list[SourceLayer]:
    """The layers of a multi-layer source (GeoPackage, KML, GPX, OSM), from `ogrinfo -so -al`; -1 features: unknown."""
    args = [tool_path("ogrinfo"), "-ro", "-so", "-al", "-nomd", "-noextent", str(path)]
    try:
        result = subprocess.run(  # noqa: S603 -- an argument list; the path is ours
            args, env=gdal_env(driver=source_format.driver, tmp=tmp), cwd=tmp, capture_output=True, text=True,
            timeout=timeout, check=False, preexec_fn=_die_with_parent,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise ImportRefused(f"Reading the file's layers took longer than {timeout:g} s.") from None
    if result.returncode != 0:
        raise ImportRefused(f"GDAL cannot read this {source_format.label} file: {_last_error(result.stderr)}")
    layers, current = [], {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(": ")
        if key == "Layer name":
            current = {"name": value}
            layers.append(current)
        elif key in ("Geometry", "Feature Count") and current:
            current[key] = value
    return [SourceLayer(d["name"], d.get("Geometry", ""), int(d.get("Feature Count", "0") or 0)) for d in layers]


# --- staging -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageRequest:
    path: Path
    source_format: SourceFormat
    table: str
    layer: str | None  # a layer of a multi-layer source, already checked against its layer list
    srid: int | None  # an EPSG code checked against spatial_ref_sys
    tmp: Path
    timeout: float


def ogr2ogr_args(request: StageRequest, *, datasource: str) -> list[str]:
    source_srs: list[str] = []
    if request.srid is not None:
        source_srs = ["-s_srs", f"EPSG:{int(request.srid)}"]
    elif not request.source_format.has_crs:
        source_srs = ["-s_srs", "EPSG:4326"]  # CSV lat/lon and WKT: WGS 84 unless srid says otherwise
    open_options = (
        [arg for option in CSV_OPTIONS for arg in ("-oo", option)] if request.source_format.key == "csv" else []
    )
    layers = [refuse_unsafe_layer_name(request.layer, field="source_layer")] if request.layer else []
    return [
        tool_path("ogr2ogr"), "-progress",
        "-f", OUTPUT_DRIVER, datasource, str(request.path), *layers,
        *open_options,
        "-nln", request.table,
        # Untyped and 2D: repair and family extraction happen in PostGIS, where we count them.
        "-nlt", "GEOMETRY", "-dim", "XY",
        *source_srs, "-t_srs", "EPSG:4326",
        "-lco", f"GEOMETRY_NAME={GEOMETRY_COLUMN}", "-lco", f"FID={FID_COLUMN}",
        "-lco", "UNLOGGED=YES",  # scratch data: no WAL
        "-lco", "SPATIAL_INDEX=NONE",  # read once, in full
        "-lco", "LAUNDER=NO",  # attribute names as the file spells them
        "-lco", "PRECISION=NO",  # no numeric(width) overflow on sloppy declared widths
        "-mapFieldType", "StringList=String,IntegerList=String,Integer64List=String,RealList=String",
        "--config", "PG_USE_COPY", "YES",
    ]  # fmt: skip


def _last_error(stderr: str) -> str:
    """GDAL's first error (the cause; later ones say it stopped), unwrapped; else its last line."""
    errors = [" ".join(text.split()) for kind, text in _MESSAGE.findall(stderr) if kind == "ERROR"]
    causes = [e for e in errors if not e.startswith("Terminating translation")]
    fallback = [line.strip() for line in stderr.splitlines() if line.strip()] or ["no message"]
    return (causes or errors or fallback[-1:])[0][:500]


def _progress_of(output_path: Path) -> int:
    numbers = re.findall(r"\d+", output_path.read_text(errors="replace")[-200:])
    return int(numbers[-1]) if numbers else 0


def stage(request: StageRequest, *, on_progress: Callable[[int], bool]) -> None:
    """Copy the source into an unlogged table with ogr2ogr (COPY), reprojected to 4326.

    `on_progress(percent)` is called about once a second; when it returns False
    (the job was cancelled) ogr2ogr is killed and ImportCancelled is raised by the caller.
    """
    datasource, pg_env = pg_datasource("meridian import (ogr2ogr)")
    env = {**gdal_env(driver=request.source_format.driver, tmp=request.tmp), **pg_env}
    output, errors = request.tmp / "ogr2ogr.out", request.tmp / "ogr2ogr.err"
    deadline = time.monotonic() + request.timeout
    # Both streams go to files: a pipe nobody reads would block a chatty ogr2ogr.
    with output.open("w") as stdout, errors.open("w") as stderr:
        process = subprocess.Popen(  # noqa: S603 -- an argument list, no shell; the path and names are checked
            ogr2ogr_args(request, datasource=datasource),
            env=env, cwd=request.tmp, stdout=stdout, stderr=stderr, preexec_fn=_die_with_parent,
        )  # fmt: skip
        try:
            while process.poll() is None:
                if time.monotonic() > deadline:
                    raise ImportRefused(f"Reading the file took longer than {request.timeout:g} s.")
                if not on_progress(_progress_of(output)):
                    raise StageCancelled()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=0.5)  # returns as soon as ogr2ogr exits, not half a second later
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    if process.returncode != 0:
        _refuse_failed_read(request, errors.read_text(errors="replace"))


class StageCancelled(Exception):
    pass


def _refuse_failed_read(request: StageRequest, stderr: str) -> None:
    if _NO_CRS.search(stderr):
        raise ImportRefused(
            "The file has no coordinate reference system (no .prj or CRS); send srid with its EPSG code."
        )
    raise ImportRefused(f"GDAL could not read this {request.source_format.label} file: {_last_error(stderr)}")
