"""POST /api/v1/imports/ with {"url": …}: checked in the request, fetched by the worker, refused with a reason."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.response import Response
from rest_framework.test import APIClient

from apps.imports import services
from apps.imports.loading import staging_tables_left
from apps.imports.tests import files
from apps.imports.tests.conftest import IMPORTS_URL, Team, feature_rows, feature_total, job_of, layer_of
from apps.imports.types import ImportMode
from apps.imports.uploads import import_directory
from apps.jobs.models import Job
from apps.jobs.services import job_cancel
from apps.maps.selectors import actor_for
from tests import http_servers
from tests.http_servers import LocalServer, local_server
from tests.workers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)
POINTS = files.geojson(files.point_features())


@pytest.fixture
def server(settings: Any) -> Iterator[LocalServer]:
    """A data server on 127.0.0.1, which only this allow-list makes reachable (as in tests and self-hosting)."""
    settings.FETCH_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    with local_server() as running:
        yield running


def post_url(client: APIClient, url: str, **fields: Any) -> Response:
    return client.post(IMPORTS_URL, {"url": url, **fields}, format="json")


def nothing_stored(media_root: Path) -> bool:
    return not Job.objects.unscoped().exists() and not any((media_root / "imports").glob("*/upload/*"))


# --- the request ---------------------------------------------------------------------------------


def test_a_url_import_answers_202_and_fetches_nothing_in_the_request(team: Team, server: LocalServer) -> None:
    server.routes["/data/places.geojson"] = http_servers.body(POINTS)
    url = server.url("/data/places.geojson")
    job = job_of(post_url(team.client(), url, workspace=team.workspace.slug, name="Places"))
    assert job.status == "queued" and job.params["url"] == url and job.params["file_name"] == "places.geojson"
    assert server.requests == []


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        ("file:///etc/passwd", "url: Only http and https URLs can be fetched (this one has file:)."),
        ("ftp://example.com/a.zip", "url: Only http and https URLs can be fetched (this one has ftp:)."),
        ("gopher://127.0.0.1:6379/_FLUSHALL", "url: Only http and https URLs can be fetched (this one has gopher:)."),
        ("data:application/json,{}", "url: Only http and https URLs can be fetched (this one has data:)."),
        ("http://user:pw@127.0.0.1/x.geojson", "url: URLs with a user name or password are not accepted."),
        ("http://[::1]/x.geojson", "url: refused: ::1 is a loopback address."),
        ("http://169.254.169.254/latest/meta-data/", "url: refused: 169.254.169.254 is a link-local address."),
        ("http://10.0.0.5/x.geojson", "url: refused: 10.0.0.5 is a private address."),
        ("http://2130706433/x.geojson", "url: refused: 2130706433 is not a canonical IP address"),
        ("http://0177.0.0.1/x.geojson", "url: refused: 0177.0.0.1 is not a canonical IP address"),
        ("http://no-such-host.invalid/x.geojson", "url: The host no-such-host.invalid does not resolve."),
    ],
)
def test_a_url_that_can_never_be_fetched_is_a_400_naming_it(
    team: Team, media_root: Path, url: str, detail: str
) -> None:
    response = post_url(team.client(), url, workspace=team.workspace.slug, name="x")
    assert response.status_code == 400 and response.data["detail"].startswith(detail), response.data
    assert response.data["code"] == "import_refused" and list(response.data["errors"]) == ["url"]
    assert nothing_stored(media_root)


def test_localhost_is_refused_unless_allow_listed(team: Team, media_root: Path) -> None:
    with local_server() as running:
        response = post_url(
            team.client(), running.url("/x.geojson", host="localhost"), workspace=team.workspace.slug, name="x"
        )
    assert response.status_code == 400
    assert response.data["detail"].startswith("url: refused: localhost resolves to ")
    assert response.data["detail"].endswith(", a loopback address.") and running.requests == []


def test_a_file_and_a_url_together_are_refused(team: Team, server: LocalServer, media_root: Path) -> None:
    response = team.client().post(
        IMPORTS_URL,
        {
            "file": SimpleUploadedFile("p.geojson", POINTS),
            "url": server.url("/p.geojson"),
            "workspace": team.workspace.slug,
            "name": "x",
        },
        format="multipart",
    )
    assert response.status_code == 400 and response.data["detail"] == "url: Send either a file or a url, not both."
    assert nothing_stored(media_root)


def test_a_format_is_only_for_urls_and_must_be_known(team: Team, server: LocalServer) -> None:
    unknown = post_url(team.client(), server.url("/x"), workspace=team.workspace.slug, name="x", format="vrt")
    assert unknown.status_code == 400 and list(unknown.data["errors"]) == ["format"]
    no_url = team.client().post(
        IMPORTS_URL, {"workspace": team.workspace.slug, "name": "x", "format": "csv"}, format="json"
    )
    assert no_url.status_code == 400 and no_url.data["errors"] == {
        "format": ["Only a URL import takes a format; an upload's comes from its file name."]
    }


def test_a_viewer_cannot_import_a_url(team: Team, server: LocalServer, media_root: Path) -> None:
    server.routes["/p.geojson"] = http_servers.body(POINTS)
    response = post_url(team.client("viewer"), server.url("/p.geojson"), workspace=team.workspace.slug, name="x")
    assert response.status_code == 403 and nothing_stored(media_root) and server.requests == []


def test_an_outsider_gets_404_before_the_url_is_looked_at(team: Team) -> None:
    response = post_url(team.client("outsider"), "file:///etc/passwd", workspace=team.workspace.slug, name="x")
    assert response.status_code == 404


# --- the worker (in-process; test_worker.py runs one through a real Celery worker) -------------------


def imported(team: Team, url: str, **fields: Any) -> Job:
    fields.setdefault("name", "From a URL")
    job = job_of(post_url(team.client(), url, workspace=team.workspace.slug, **fields))
    job.refresh_from_db()
    return job


@pytest.mark.usefixtures("eager")
def test_a_served_geojson_becomes_a_layer(team: Team, server: LocalServer, media_root: Path) -> None:
    server.routes["/places.geojson"] = http_servers.body(POINTS, content_type="application/geo+json")
    job = imported(team, server.url("/places.geojson"))
    rows = feature_rows(layer_of(job))
    assert [r["properties"]["name"] for r in rows] == ["Senate Square", "Kamppi", "Kallio Church"]
    assert all(r["srid"] == 4326 and r["valid"] for r in rows) and (rows[0]["x"], rows[0]["y"]) == (24.9525, 60.1694)
    assert job.result["format"] == "geojson" and job.result["imported"] == 3
    assert not import_directory(job.pk).exists() and staging_tables_left() == []


@pytest.mark.parametrize(
    ("route", "expected_format"),
    [
        (http_servers.body(POINTS, content_type="application/geo+json"), "geojson"),
        (http_servers.body(files.csv_latlon(), disposition='attachment; filename="stops.csv"'), "csv"),
    ],
    ids=["content-type", "content-disposition"],
)
@pytest.mark.usefixtures("eager")
def test_the_format_comes_from_the_server_when_the_path_has_none(
    team: Team, server: LocalServer, route: http_servers.Route, expected_format: str
) -> None:
    server.routes["/download"] = route
    job = imported(team, server.url("/download?id=7"))
    assert job.status == "succeeded", job.error
    assert job.result["format"] == expected_format


@pytest.mark.usefixtures("eager")
def test_the_user_names_the_format_when_nothing_else_does(team: Team, server: LocalServer) -> None:
    server.routes["/download"] = http_servers.body(POINTS)
    unnamed = imported(team, server.url("/download"))
    assert unnamed.status == "failed" and "name it with format (one of csv, flatgeobuf, geojson" in unnamed.error
    named = imported(team, server.url("/download"), format="geojson")
    assert layer_of(named).feature_count == 3


@pytest.mark.usefixtures("eager")
def test_a_redirect_to_a_refused_address_fails_the_job_without_connecting(
    team: Team, server: LocalServer, media_root: Path
) -> None:
    with local_server("127.0.0.2") as internal:
        internal.routes["/secret.geojson"] = http_servers.body(POINTS)
        server.routes["/go.geojson"] = http_servers.redirect(internal.url("/secret.geojson"))
        job = imported(team, server.url("/go.geojson"))
    assert job.status == "failed" and job.error == (
        "The URL could not be imported: refused: 127.0.0.2 is a loopback address (in a redirect from 127.0.0.1)."
    )
    assert internal.requests == [] and feature_total() == 0 and not import_directory(job.pk).exists()


@pytest.mark.usefixtures("eager")
def test_a_download_past_the_size_cap_fails_the_job_and_keeps_nothing(
    team: Team, server: LocalServer, settings: Any
) -> None:
    settings.FETCH_MAX_BYTES = 1000
    server.routes["/big.geojson"] = http_servers.body(POINTS * 10, length=False)
    job = imported(team, server.url("/big.geojson"))
    assert job.status == "failed"
    assert (
        job.error
        == "The URL could not be imported: refused: the file is larger than the 1000 bytes a download may have."
    )
    assert feature_total() == 0 and not import_directory(job.pk).exists()


@pytest.mark.usefixtures("eager")
def test_a_slow_server_fails_the_job_with_a_timeout(team: Team, server: LocalServer, settings: Any) -> None:
    settings.FETCH_TIMEOUT_SECONDS = 0.5
    server.routes["/slow.geojson"] = http_servers.silent(5)
    job = imported(team, server.url("/slow.geojson"))
    assert job.status == "failed" and job.error == "The URL could not be imported: 127.0.0.1 sent nothing for 0.5 s."


@pytest.mark.usefixtures("eager")
def test_a_fetched_file_gets_the_same_content_checks_as_an_upload(team: Team, server: LocalServer) -> None:
    server.routes["/places.geojson"] = http_servers.body(files.VRT_VSICURL)
    job = imported(team, server.url("/places.geojson"))
    assert job.status == "failed" and "This is a GDAL VRT file" in job.error
    assert feature_total() == 0 and len(server.requests) == 1


def test_a_retried_job_downloads_again_from_a_clean_slate(team: Team, server: LocalServer) -> None:
    server.routes["/places.geojson"] = http_servers.body(POINTS)
    data = services.ImportInput(
        workspace=team.workspace.slug, mode=ImportMode.NEW, name="Retry", url=server.url("/places.geojson")
    )
    job = services.import_create(
        actor=actor_for(team.editor), user=team.editor, data=data, upload=None, job_id=uuid.uuid4(), enqueue=False
    )
    leftover = import_directory(job.pk) / "upload" / "download.part"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a file from a killed attempt")
    services.import_execute(job=job)
    services.import_execute(job=job)  # a redelivered message: the finished job is left alone
    job.refresh_from_db()
    assert job.status == "succeeded" and job.attempts == 1 and layer_of(job).feature_count == 3
    assert len(server.requests) == 1 and not import_directory(job.pk).exists()


def test_cancelling_during_the_download_stops_it_and_keeps_nothing(team: Team, server: LocalServer) -> None:
    server.routes["/places.geojson"] = http_servers.slowly(POINTS * 50, pieces=40, pause=0.25)
    data = services.ImportInput(
        workspace=team.workspace.slug, mode=ImportMode.NEW, name="Cancelled", url=server.url("/places.geojson")
    )
    job = services.import_create(
        actor=actor_for(team.editor), user=team.editor, data=data, upload=None, job_id=uuid.uuid4(), enqueue=False
    )
    worker = threading.Thread(target=services.import_execute, kwargs={"job": job})
    worker.start()
    wait_until(lambda: Job.objects.unscoped().get(pk=job.pk).phase.startswith("downloading "), what="downloading")
    job_cancel(job=job)
    started = time.monotonic()
    worker.join(timeout=10)
    assert not worker.is_alive() and time.monotonic() - started < 5  # not the 10 s the whole body takes
    job.refresh_from_db()
    assert job.status == "cancelled" and feature_total() == 0 and not import_directory(job.pk).exists()
