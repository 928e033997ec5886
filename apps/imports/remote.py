"""URL imports: check the URL in the request, fetch it in the worker through the guarded client.

The request only checks what is cheap (syntax, and that the host resolves to global
addresses); the worker fetches through apps/core/fetch — which checks everything again,
hop by hop — into the job's own upload directory. The file then gets the name an
upload of its format would have, and the same checks an upload gets (services.py).
The file's format comes from, in order: what the user named, the server's
Content-Disposition file name, the URL's path (after and before redirects), and
the Content-Type.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from apps.core import fetch
from apps.core.errors import ApplicationError
from apps.imports import safety
from apps.imports.errors import ImportRefused
from apps.imports.uploads import StoredUpload, import_directory

REPORT_EVERY_SECONDS = 1.0
# The formats a user may name for a URL, and the extension the fetched file gets for each.
FORMAT_EXTENSIONS: dict[str, str] = {
    **{f.key: f.extensions[0] for f in safety.FORMATS if f.key != "shapefile"},
    "zip": ".zip",
    "kmz": ".kmz",
}
CONTENT_TYPES: dict[str, str] = {
    "application/geo+json": ".geojson",
    "application/vnd.geo+json": ".geojson",
    "application/json": ".json",
    "application/geo+json-seq": ".geojsonl",
    "application/x-ndjson": ".ndjson",
    "text/csv": ".csv",
    "application/geopackage+sqlite3": ".gpkg",
    "application/vnd.google-earth.kml+xml": ".kml",
    "application/vnd.google-earth.kmz": ".kmz",
    "application/gpx+xml": ".gpx",
    "application/flatgeobuf": ".fgb",
    "application/zip": ".zip",
    "application/x-zip-compressed": ".zip",
}


def url_checked(*, url: str | None, url_format: str | None, upload: StoredUpload | None) -> str | None:
    """In the request: refuse a URL that can never be fetched (400 on `url`); return a name to show for it."""
    if url is None:
        if url_format is not None:
            raise ApplicationError(
                "Only a URL import takes a format; an upload's comes from its file name.", field="format"
            )
        return None
    if upload is not None:
        raise ApplicationError("Send either a file or a url, not both.", field="url")
    try:
        target = fetch.check_url(url)
    except fetch.FetchError as exc:
        raise ImportRefused(exc.message, field="url") from None
    return PurePosixPath(unquote(urlsplit(url).path)).name[:255] or target.host


def url_fetch(*, job_id: object, url: str, url_format: str | None, on_progress: Callable[[str], None]) -> StoredUpload:
    """In the worker: download the URL into the job's upload directory, named by its format.

    Idempotent: a previous attempt's download is removed first, and a refused or broken
    download leaves no file behind.
    """
    directory = import_directory(job_id) / "upload"
    safety.remove_tree(directory)
    directory.mkdir(parents=True)
    try:
        fetched = fetch.fetch_to_file(url, directory / "download.part", on_progress=_reporter(on_progress))
    except fetch.FetchError as exc:
        raise ImportRefused(f"The URL could not be imported: {exc.message}") from None
    suffix = _suffix(fetched, url=url, url_format=url_format)
    path = fetched.path.rename(directory / f"source{suffix}")
    return StoredUpload(path=path, name=path.name, size=fetched.size)


def _reporter(on_progress: Callable[[str], None]) -> fetch.ProgressCallback:
    """Turn byte counts into a phase message at most once a second ("downloading 45%" or "… 12 MB")."""
    last = 0.0

    def report(received: int, total: int | None) -> None:
        nonlocal last
        if time.monotonic() - last < REPORT_EVERY_SECONDS:
            return
        last = time.monotonic()
        done = f"{received * 100 // total}%" if total else f"{received / 1e6:.1f} MB"
        on_progress(f"downloading {done}")

    return report


def _suffix(fetched: fetch.Fetched, *, url: str, url_format: str | None) -> str:
    if url_format is not None:
        return FORMAT_EXTENSIONS[url_format]
    names = (fetched.filename, urlsplit(fetched.url).path, urlsplit(url).path)
    for name in names:
        suffix = PurePosixPath(unquote(name).lower()).suffix
        if safety.format_for_name(f"x{suffix}") is not None or suffix in safety.ARCHIVE_EXTENSIONS:
            return suffix
    if fetched.content_type in CONTENT_TYPES:
        return CONTENT_TYPES[fetched.content_type]
    served = fetched.content_type or "no Content-Type"
    raise ImportRefused(
        f"The file's format cannot be told from the URL or the server's answer ({served}); "
        f"name it with format (one of {', '.join(sorted(FORMAT_EXTENSIONS))})."
    )
