"""The admin console for background jobs."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.jobs.models import Job, JobKind, JobStatus
from apps.workspaces.models import Workspace
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:jobs_job_changelist")


@pytest.fixture
def workspace() -> Workspace:
    return WorkspaceFactory(name="Harbour Survey")


def make_job(workspace: Workspace, **fields: object) -> Job:
    return Job.objects.for_workspace(workspace).create(workspace=workspace, kind=JobKind.IMPORT, **fields)


@pytest.fixture
def job(workspace: Workspace) -> Job:
    return make_job(workspace, params={"file": "piers.gpkg"}, phase="waiting for a worker")


def change_url(job: Job) -> str:
    return reverse("admin:jobs_job_change", args=[job.pk])


def test_changelist_search_change_and_add_pages_open(admin_client: Client, job: Job) -> None:
    assert admin_client.get(CHANGELIST).status_code == 200
    assert change_url(job) in admin_client.get(CHANGELIST, {"q": str(job.pk)}).text
    assert change_url(job) in admin_client.get(CHANGELIST, {"q": "harbour"}).text
    assert change_url(job) not in admin_client.get(CHANGELIST, {"q": "nothing-like-it"}).text
    assert admin_client.get(change_url(job)).status_code == 200
    assert admin_client.get(reverse("admin:jobs_job_add")).status_code == 200


def test_progress_and_result_are_read_only(admin_client: Client, job: Job) -> None:
    page = admin_client.get(change_url(job)).text

    assert "waiting for a worker" in page
    for field in ("status", "progress", "phase", "result", "error", "params"):
        assert f'name="{field}"' not in page


def test_cancel_action_cancels_a_queued_job(admin_client: Client, job: Job) -> None:
    response = admin_client.post(CHANGELIST, {"action": "cancel", "_selected_action": [job.pk]})

    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert job.cancel_requested
    assert job.finished_at is not None


def test_cancel_action_leaves_finished_jobs_alone(admin_client: Client, workspace: Workspace) -> None:
    done = make_job(workspace, status=JobStatus.SUCCEEDED, progress=100, finished_at=timezone.now())

    response = admin_client.post(CHANGELIST, {"action": "cancel", "_selected_action": [done.pk]}, follow=True)

    assert "1 job(s) had already finished." in response.text
    done.refresh_from_db()
    assert done.status == JobStatus.SUCCEEDED


def test_job_added_in_the_admin_is_queued_in_the_chosen_workspace(
    admin_client: Client, admin_user: object, workspace: Workspace
) -> None:
    response = admin_client.post(
        reverse("admin:jobs_job_add"), {"workspace": workspace.pk, "kind": "export", "params": '{"format": "gpkg"}'}
    )

    assert response.status_code == 302
    added = Job.objects.for_workspace(workspace).get(kind="export")
    assert (added.status, added.created_by) == (JobStatus.QUEUED, admin_user)
