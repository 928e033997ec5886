"""Reads for workspaces, members and invitations."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from apps.accounts.models import User
from apps.core.errors import NotFound, PermissionDenied
from apps.maps.permissions import Actor, WorkspaceAction, workspace_actions
from apps.workspaces.models import Invitation, Membership, Workspace


def workspaces_for(actor: Actor) -> QuerySet[Workspace]:
    return Workspace.objects.filter(pk__in=list(actor.roles)).order_by("name")


def workspace_for(actor: Actor, slug: str) -> Workspace:
    """A workspace the actor belongs to; 404 for missing and foreign alike."""
    workspace = Workspace.objects.filter(slug=slug).first()
    if workspace is None or actor.role_in(workspace.pk) is None:
        raise NotFound()
    return workspace


def members_of(workspace: Workspace) -> QuerySet[Membership]:
    return Membership.objects.filter(workspace=workspace).select_related("user").order_by("user__email")


def membership_in(workspace: Workspace, user_id: object) -> Membership:
    membership = Membership.objects.filter(workspace=workspace, user_id=user_id).select_related("workspace").first()
    if membership is None:
        raise NotFound()
    return membership


def invitations_of(workspace: Workspace) -> QuerySet[Invitation]:
    return Invitation.objects.filter(workspace=workspace).select_related("invited_by")


def invitations_managed_by(actor: Actor, workspace: Workspace) -> QuerySet[Invitation]:
    """Members see that invitations exist only if they may manage members."""
    if WorkspaceAction.MANAGE_MEMBERS not in workspace_actions(actor, workspace.pk):
        raise PermissionDenied("Only workspace admins see invitations.")
    return invitations_of(workspace)


def invitation_in(workspace: Workspace, invitation_id: object) -> Invitation:
    invitation = invitations_of(workspace).filter(pk=invitation_id).select_related("workspace").first()
    if invitation is None:
        raise NotFound()
    return invitation


def invitations_for_user(user: User) -> QuerySet[Invitation]:
    """Pending, unexpired invitations addressed to the user's email."""
    return Invitation.objects.filter(
        email__iexact=user.email, status=Invitation.Status.PENDING, expires_at__gt=timezone.now()
    ).select_related("workspace", "invited_by")
