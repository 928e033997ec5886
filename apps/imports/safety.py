"""Hostile-input checks for uploaded files, run before GDAL sees a byte (DESIGN §9).

Three lines of defence, each refusing with a sentence that says why:

1. Names: a file or layer name that GDAL would read as a virtual path (`/vsicurl/…`)
   or a driver prefix (`GPKG:…`, `PG:…`) is refused. GDAL only ever receives paths we built.
2. Content: a file must look like the format its extension claims (a VRT saved as
   `.geojson` starts with `<`, not `{`), and XML must have no DOCTYPE, so no entity
   can be declared (billion laughs, external entities).
3. Archives: zip members are checked from the central directory before anything is
   extracted (count, total size, compression ratio, overlapping entries, paths,
   symlinks, encryption, nested archives), then extracted one by one under names
   we choose, never with `extractall`.
"""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from django.conf import settings

from apps.imports.errors import ImportRefused

SNIFF_BYTES = 64 * 1024
COPY_CHUNK = 1024 * 1024

_GDAL_PREFIX = re.compile(r"^\s*(/vsi|\\vsi|[A-Za-z][A-Za-z0-9_ ]*:)", re.IGNORECASE)
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")
_NESTED_ARCHIVES = (".zip", ".kmz", ".gz", ".tgz", ".tar", ".7z", ".rar", ".bz2", ".xz")
_VRT_ROOTS = (b"<ogrvrtdatasource", b"<vrtdataset")


def refuse_gdal_prefixes(value: str, *, field: str) -> str:
    """Refuse names GDAL would interpret: `/vsi…` virtual file systems and `DRIVER:` prefixes."""
    if _GDAL_PREFIX.match(value):
        raise ImportRefused(
            "Names starting with /vsi… or DRIVER: are not accepted (GDAL would read them as a path).",
            field=field,
        )
    return value


def refuse_unsafe_layer_name(value: str, *, field: str) -> str:
    """Refuse a layer name GDAL would read as a path (see above) or ogr2ogr as an option (a leading '-')."""
    refuse_gdal_prefixes(value, field=field)
    if value.lstrip().startswith("-"):
        raise ImportRefused(
            f"Layer names starting with '-' are not accepted ({value[:100]!r}: ogr2ogr would read it as an option).",
            field=field,
        )
    return value


# --- content sniffing --------------------------------------------------------------


def _head(path: Path) -> bytes:
    with path.open("rb") as file:
        return file.read(SNIFF_BYTES)


def _text_start(head: bytes) -> bytes:
    return head.removeprefix(b"\xef\xbb\xbf").lstrip()


def _refuse_vrt(head: bytes) -> None:
    if _text_start(head).lower().startswith(_VRT_ROOTS):
        raise ImportRefused("This is a GDAL VRT file, which can read other files and URLs; it is not accepted.")


def _looks_like_json(head: bytes) -> bool:
    return _text_start(head)[:1] in (b"{", b"\x1e")


def _looks_like_text(head: bytes) -> bool:
    return b"\x00" not in head and not _text_start(head).startswith(b"<")


def xml_root_element(head: bytes) -> str:
    """The root element's local name, after refusing any DOCTYPE (and so any entity declaration).

    Entities can only be declared in a DOCTYPE's internal subset, which XML places
    before the root element; so the prolog is the only place to look.
    """
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ImportRefused("UTF-16 XML is not accepted; save the file as UTF-8.")
    text = _text_start(head)
    while True:
        if text.startswith(b"<?"):
            end = text.find(b"?>")
        elif text.startswith(b"<!--"):
            end = text.find(b"-->")
        elif text.upper().startswith((b"<!DOCTYPE", b"<!ENTITY", b"<!")):
            raise ImportRefused("XML with a DOCTYPE or entity declarations is not accepted (entity expansion).")
        else:
            break
        if end < 0:
            raise ImportRefused("The XML prolog is longer than expected; the file is not accepted.")
        text = text[end + 2 :].lstrip(b">").lstrip()
    match = re.match(rb"<(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)", text)
    if match is None:
        raise ImportRefused("The file is not XML.")
    return match.group(1).decode("ascii").lower()


def _xml_rooted(*names: str) -> Callable[[bytes], bool]:
    def check(head: bytes) -> bool:
        return _text_start(head).startswith(b"<") and xml_root_element(head) in names

    return check


def _looks_like_osm_pbf(head: bytes) -> bool:
    """A PBF opens with a 4-byte header length, then the BlobHeader's first field: type = "OSMHeader"."""
    return head[4:15] == b"\x0a\x09OSMHeader"


@dataclass(frozen=True)
class SourceFormat:
    """A format we import: its GDAL driver, the extensions that name it, and how its first bytes look."""

    key: str
    driver: str
    label: str
    extensions: tuple[str, ...]
    sniff: Callable[[bytes], bool]
    multi_layer: bool = False
    has_crs: bool = True  # False: the format carries no CRS; WGS 84 is assumed unless srid says otherwise
    # Multi-layer formats whose layers are a fixed set: imported together, each non-empty one a Meridian layer,
    # when the request names none.
    default_layers: tuple[str, ...] = ()
    # Layers that repeat other layers' data (GPX track points): imported only when named.
    repeating_layers: tuple[str, ...] = ()


FORMATS: tuple[SourceFormat, ...] = (
    SourceFormat("geojson", "GeoJSON", "GeoJSON", (".geojson", ".json"), _looks_like_json),
    SourceFormat(
        "geojsonseq", "GeoJSONSeq", "GeoJSON sequence", (".geojsonl", ".geojsons", ".ndjson"), _looks_like_json
    ),
    SourceFormat("csv", "CSV", "CSV", (".csv",), _looks_like_text, has_crs=False),
    SourceFormat("shapefile", "ESRI Shapefile", "Shapefile", (".shp",), lambda h: h[:4] == b"\x00\x00\x27\x0a"),
    SourceFormat("gpkg", "GPKG", "GeoPackage", (".gpkg",), lambda h: h[:16] == b"SQLite format 3\x00", True),
    SourceFormat("kml", "KML", "KML", (".kml",), _xml_rooted("kml"), True),
    SourceFormat(
        "gpx",
        "GPX",
        "GPX",
        (".gpx",),
        _xml_rooted("gpx"),
        multi_layer=True,
        default_layers=("waypoints", "routes", "tracks"),
        repeating_layers=("route_points", "track_points"),
    ),
    SourceFormat("flatgeobuf", "FlatGeobuf", "FlatGeobuf", (".fgb",), lambda h: h[:3] == b"fgb"),
    SourceFormat(
        "osm",
        "OSM",
        "OSM PBF",
        (".pbf",),
        _looks_like_osm_pbf,
        multi_layer=True,
        default_layers=("points", "lines", "multipolygons"),
    ),
)
ARCHIVE_EXTENSIONS = (".zip", ".kmz")
# Sidecars a dataset inside an archive may need; anything else in the archive is ignored.
SIDECAR_EXTENSIONS = (".shx", ".dbf", ".prj", ".cpg")


def format_for_name(name: str) -> SourceFormat | None:
    suffix = PurePosixPath(name.lower()).suffix
    return next((f for f in FORMATS if suffix in f.extensions), None)


def accepted_extensions() -> list[str]:
    return sorted({ext for f in FORMATS for ext in f.extensions if ext != ".shp"} | set(ARCHIVE_EXTENSIONS))


def check_content(path: Path, source_format: SourceFormat) -> None:
    """Refuse a file whose first bytes are not what its extension promised (VRTs in disguise, DOCTYPEs)."""
    head = _head(path)
    _refuse_vrt(head)
    if not source_format.sniff(head):
        raise ImportRefused(f"The file does not look like {source_format.label}; check its format and extension.")


# --- archives ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int
    max_uncompressed_bytes: int
    max_ratio: float
    ratio_floor_bytes: int  # members smaller than this are not ratio-checked (tiny files compress oddly)

    @classmethod
    def from_settings(cls) -> ArchiveLimits:
        return cls(
            max_members=getattr(settings, "IMPORT_MAX_ARCHIVE_MEMBERS", 1000),
            max_uncompressed_bytes=getattr(settings, "IMPORT_MAX_UNCOMPRESSED_BYTES", 4 * 1024**3),
            max_ratio=getattr(settings, "IMPORT_MAX_COMPRESSION_RATIO", 250),
            ratio_floor_bytes=1024 * 1024,
        )


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _check_member_name(name: str) -> None:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or _WINDOWS_DRIVE.match(name) or "\x00" in name:
        raise ImportRefused(f"The archive holds a member with an absolute path ({name!r}); it is not accepted.")
    if ".." in parts:
        raise ImportRefused(f"The archive holds a member whose path leaves the archive ({name!r}); it is not accepted.")


def _is_ignored(name: str) -> bool:
    posix = PurePosixPath(name.replace("\\", "/"))
    return name.endswith("/") or "__MACOSX" in posix.parts or posix.name.startswith(".")


def _check_member(info: zipfile.ZipInfo, limits: ArchiveLimits) -> None:
    _check_member_name(info.filename)
    if _is_symlink(info):
        raise ImportRefused(f"The archive holds a symbolic link ({info.filename!r}); it is not accepted.")
    if info.flag_bits & 0x1:
        raise ImportRefused("Encrypted archives are not accepted.")
    if info.filename.lower().endswith(_NESTED_ARCHIVES):
        raise ImportRefused(f"Archives inside archives are not accepted ({info.filename!r}).")
    if info.file_size > limits.ratio_floor_bytes and info.file_size > limits.max_ratio * max(info.compress_size, 1):
        raise ImportRefused(
            f"The archive member {info.filename!r} expands more than {limits.max_ratio:g} times "
            "(a zip bomb?); it is not accepted."
        )


def _check_overlaps(infos: list[zipfile.ZipInfo]) -> None:
    """Members sharing compressed bytes (the overlapping-entry zip bomb) are refused."""
    previous_end = 0
    for info in sorted(infos, key=lambda i: i.header_offset):
        if info.header_offset < previous_end:
            raise ImportRefused("The archive's members overlap (a zip bomb technique); it is not accepted.")
        previous_end = info.header_offset + 30 + info.compress_size  # 30: the fixed local header


def archive_members(path: Path, *, limits: ArchiveLimits | None = None) -> list[zipfile.ZipInfo]:
    """Check every member of the zip at `path` from its central directory; return those worth extracting.

    Nothing is decompressed here, so a hostile archive is refused in milliseconds.
    """
    limits = limits or ArchiveLimits.from_settings()
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImportRefused(f"The archive cannot be read ({exc}).") from None
    if len(infos) > limits.max_members:
        raise ImportRefused(f"The archive holds more than {limits.max_members} members; it is not accepted.")
    for info in infos:
        _check_member(info, limits)
    _check_overlaps(infos)
    total = sum(info.file_size for info in infos)
    if total > limits.max_uncompressed_bytes:
        raise ImportRefused(
            f"The archive expands to {total} bytes, more than the {limits.max_uncompressed_bytes} allowed."
        )
    return [info for info in infos if not _is_ignored(info.filename) and not info.is_dir()]


def _wanted(name: str) -> bool:
    suffix = PurePosixPath(name.lower()).suffix
    return format_for_name(name) is not None or suffix in SIDECAR_EXTENSIONS


def _extract_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, destination: Path) -> None:
    """Copy one member, never more bytes than its header declared (a lying header cannot inflate it)."""
    written = 0
    with archive.open(info) as source, destination.open("xb") as target:
        while chunk := source.read(COPY_CHUNK):
            written += len(chunk)
            if written > info.file_size:
                raise ImportRefused(f"The archive member {info.filename!r} is larger than its header says.")
            target.write(chunk)


def archive_extract(path: Path, directory: Path) -> list[Path]:
    """Check the archive, then extract the members we can read, flat, under their base names.

    Base names are re-checked after flattening, and two members with the same base
    name are refused rather than one silently replacing the other.
    """
    members = [info for info in archive_members(path) if _wanted(info.filename)]
    directory.mkdir(parents=True, exist_ok=True)
    extracted: list[Path] = []
    seen: set[str] = set()
    with zipfile.ZipFile(path) as archive:
        for info in members:
            base = PurePosixPath(info.filename.replace("\\", "/")).name
            refuse_gdal_prefixes(base, field="file")
            if base.lower() in seen:
                raise ImportRefused(f"The archive holds two files named {base!r}; keep one dataset per archive.")
            seen.add(base.lower())
            target = directory / base
            _extract_member(archive, info, target)
            extracted.append(target)
    return extracted


def dataset_in(files: list[Path]) -> tuple[Path, SourceFormat]:
    """The one dataset among extracted files: a Shapefile, or a single file of another format."""
    datasets = [(file, f) for file in files if (f := format_for_name(file.name)) is not None]
    shapefiles = [d for d in datasets if d[1].key == "shapefile"]
    if len(shapefiles) == 1:
        return shapefiles[0]
    if len(shapefiles) > 1:
        raise ImportRefused(f"The archive holds {len(shapefiles)} Shapefiles; import one per archive.")
    kml = [d for d in datasets if d[0].name.lower() == "doc.kml"]  # KMZ's main document
    if len(datasets) == 1 or kml:
        return (kml or datasets)[0]
    if not datasets:
        raise ImportRefused("The archive holds no file Meridian can import (Shapefile, GeoJSON, GeoPackage, …).")
    raise ImportRefused(f"The archive holds {len(datasets)} datasets; import one per archive.")


def remove_tree(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
