"""Reads for jobs: people see their own jobs; workspace admins see all of the workspace's."""

from __future__ import annotations

from uuid import UUID

from django.db.models import Q, QuerySet

from apps.core.errors import NotFound
from apps.jobs.models import Job
from apps.maps.permissions import Actor
from apps.workspaces.models import Role


def jobs_visible_to(actor: Actor) -> QuerySet[Job]:
    if not actor.is_authenticated:
        return Job.objects.none()
    admin_of = [ws for ws, role in actor.roles.items() if role in (Role.OWNER, Role.ADMIN)]
    return Job.objects.unscoped().filter(
        Q(workspace_id__in=admin_of) | Q(created_by_id=actor.user_id, workspace_id__in=list(actor.roles))
    )


def job_for(actor: Actor, job_id: UUID | str) -> Job:
    job = jobs_visible_to(actor).filter(pk=job_id).first()
    if job is None:
        raise NotFound()
    return job
