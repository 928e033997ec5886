"""Export files expire EXPORT_RETENTION_HOURS after their job finished: 410 on download, then deleted."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone

from apps.accounts.models import User
from apps.jobs.models import Job, JobKind, JobStatus
from apps.jobs.tasks import delete_expired_exports
from apps.workspaces.models import Role
from celery_app import app as celery_app
from conftest import client_for
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EXPORT_RETENTION_HOURS = 24
    return settings.MEDIA_ROOT


@pytest.fixture
def owner() -> User:
    return MembershipFactory(role=Role.OWNER).user


def finished_job(owner: User, *, hours_ago: float, kind: str = JobKind.EXPORT, name: str = "out.geojson") -> Job:
    """A succeeded job whose output file is stored, finished `hours_ago`."""
    workspace = owner.memberships.get().workspace
    stored = default_storage.save(f"jobs/exports/{name}", ContentFile(b'{"type": "FeatureCollection"}'))
    finished = timezone.now() - timedelta(hours=hours_ago)
    return Job.objects.for_workspace(workspace).create(
        workspace=workspace, kind=kind, status=JobStatus.SUCCEEDED, progress=100, finished_at=finished,
        created_by=owner, output_file=stored, result={"file_name": name},
    )  # fmt: skip


def test_an_expired_export_answers_410_with_a_reason(owner: User) -> None:
    job = finished_job(owner, hours_ago=25)
    response = client_for(owner).get(f"/api/v1/jobs/{job.pk}/download/")
    assert response.status_code == 410
    body = response.json()
    assert body["code"] == "gone" and "kept for 24 hours" in body["detail"] and "export again" in body["detail"]


def test_a_fresh_export_downloads_and_says_when_it_expires(owner: User) -> None:
    job = finished_job(owner, hours_ago=1)
    client = client_for(owner)
    response = client.get(f"/api/v1/jobs/{job.pk}/download/")
    assert response.status_code == 200 and b"".join(response.streaming_content).startswith(b'{"type"')
    polled = client.get(f"/api/v1/jobs/{job.pk}/").json()
    expected = (job.finished_at + timedelta(hours=24)).isoformat().replace("+00:00", "Z")
    assert polled["output_expires_at"] == expected


def test_the_retention_setting_decides(owner: User, settings: Any) -> None:
    job = finished_job(owner, hours_ago=3)
    settings.EXPORT_RETENTION_HOURS = 2
    assert client_for(owner).get(f"/api/v1/jobs/{job.pk}/download/").status_code == 410


def test_the_cleanup_deletes_expired_export_files_and_nothing_else(owner: User, media_root: Path) -> None:
    expired = finished_job(owner, hours_ago=25, name="old.gpkg")
    fresh = finished_job(owner, hours_ago=23, name="new.mbtiles")
    poster = finished_job(owner, hours_ago=100, kind=JobKind.POSTER, name="poster.png")
    unrelated = default_storage.save("imports/upload.geojson", ContentFile(b"{}"))
    expired_path = media_root / expired.output_file.name

    out = StringIO()
    call_command("delete_expired_exports", stdout=out)

    assert "Deleted 1 expired export file" in out.getvalue()
    assert not expired_path.exists()
    expired.refresh_from_db()
    assert not expired.output_file
    for job in (fresh, poster):
        job.refresh_from_db()
        assert (media_root / job.output_file.name).exists()
    assert default_storage.exists(unrelated)
    client = client_for(owner)
    assert client.get(f"/api/v1/jobs/{expired.pk}/download/").status_code == 410  # still 410, not 404
    assert client.get(f"/api/v1/jobs/{poster.pk}/download/").status_code == 200  # posters do not expire
    assert delete_expired_exports() == 0  # a second run finds nothing left to do


def test_the_cleanup_task_is_on_beat_hourly() -> None:
    (entry,) = [e for e in celery_app.conf.beat_schedule.values() if e["task"] == "jobs.delete_expired_exports"]
    assert entry["task"] in celery_app.tasks and entry["options"]["queue"] == "celery"
    assert entry["schedule"].minute == {17} and len(entry["schedule"].hour) == 24


def test_a_failed_export_has_no_file_to_expire(owner: User) -> None:
    workspace = owner.memberships.get().workspace
    job = Job.objects.for_workspace(workspace).create(
        workspace=workspace, kind=JobKind.EXPORT, status=JobStatus.FAILED, created_by=owner,
        finished_at=timezone.now() - timedelta(days=3), error="The layer is gone.",
    )  # fmt: skip
    assert client_for(owner).get(f"/api/v1/jobs/{job.pk}/download/").status_code == 404
