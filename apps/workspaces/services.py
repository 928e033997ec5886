"""Writes for workspaces, memberships and invitations."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.accounts.models import User
from apps.core.errors import ApplicationError, Conflict, NotFound, PermissionDenied
from apps.layers import storage
from apps.layers.models import Layer
from apps.maps.permissions import Actor, WorkspaceAction, may_assign_role, workspace_actions
from apps.tiles.pointcolumns import point_columns_remove_later
from apps.workspaces.models import Invitation, Membership, Role, Workspace


def _require(actor: Actor, workspace: Workspace, action: WorkspaceAction) -> None:
    allowed = workspace_actions(actor, workspace.pk)
    if not allowed:
        raise NotFound()
    if action not in allowed:
        raise PermissionDenied(f"Your role does not allow this ({action}).")


def _unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "workspace"
    slug, n = base, 1
    while Workspace.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def workspace_create(*, user: User, name: str, slug: str = "", description: str = "") -> Workspace:
    """A new workspace; its creator is its first owner."""
    if slug and Workspace.objects.filter(slug=slug).exists():
        raise ApplicationError("This slug is taken.", field="slug")
    workspace = Workspace.objects.create(
        name=name, slug=slug or _unique_slug(name), description=description, created_by=user
    )
    Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
    return workspace


def workspace_update(*, actor: Actor, workspace: Workspace, **fields: str) -> Workspace:
    _require(actor, workspace, WorkspaceAction.MANAGE)
    if "slug" in fields and Workspace.objects.exclude(pk=workspace.pk).filter(slug=fields["slug"]).exists():
        raise ApplicationError("This slug is taken.", field="slug")
    for name, value in fields.items():
        setattr(workspace, name, value)
    workspace.save(update_fields=[*fields, "updated_at"])
    return workspace


@transaction.atomic
def workspace_delete(*, actor: Actor, workspace: Workspace) -> None:
    _require(actor, workspace, WorkspaceAction.DELETE)
    own_buckets = list(
        Layer.objects.for_workspace(workspace.pk).exclude(storage_bucket=storage.SHARED_BUCKET)
        .values_list("storage_bucket", flat=True)
    )  # fmt: skip
    if own_buckets:
        storage.own_buckets_empty(own_buckets)
        storage.unused_partitions_drop_later()
    point_columns_remove_later(list(Layer.objects.for_workspace(workspace.pk).values_list("pk", flat=True)))
    workspace.delete()


def _lock_owners(workspace: Workspace) -> int:
    """Lock the owner rows and count them, so two concurrent demotions cannot leave none."""
    return len(Membership.objects.select_for_update().filter(workspace=workspace, role=Role.OWNER).values_list("pk"))


@transaction.atomic
def membership_set_role(*, actor: Actor, membership: Membership, role: str) -> Membership:
    """Change a member's role. Admins manage editors and viewers; owners manage everyone."""
    workspace = membership.workspace
    _require(actor, workspace, WorkspaceAction.MANAGE_MEMBERS)
    if not may_assign_role(actor, workspace.pk, current=membership.role, new=role):
        raise PermissionDenied("Only owners can grant or change the owner and admin roles.")
    if membership.role == Role.OWNER and role != Role.OWNER and _lock_owners(workspace) == 1:
        raise Conflict("A workspace needs at least one owner.", field="role")
    membership.role = role
    membership.save(update_fields=["role", "updated_at"])
    _on_access_changed(workspace_id=workspace.pk, user_id=membership.user_id)
    return membership


@transaction.atomic
def membership_remove(*, actor: Actor, membership: Membership) -> None:
    """Remove a member (or leave, when the member is the actor)."""
    workspace = membership.workspace
    leaving = membership.user_id == actor.user_id
    if not leaving:
        _require(actor, workspace, WorkspaceAction.MANAGE_MEMBERS)
        if not may_assign_role(actor, workspace.pk, current=membership.role, new=Role.VIEWER):
            raise PermissionDenied("Only owners can remove owners and admins.")
    if membership.role == Role.OWNER and _lock_owners(workspace) == 1:
        raise Conflict("A workspace needs at least one owner; transfer ownership first.")
    user_id = membership.user_id
    membership.delete()
    _on_access_changed(workspace_id=workspace.pk, user_id=user_id)


def _on_access_changed(*, workspace_id: object, user_id: int) -> None:
    """Open sockets re-check access after the change commits (collaboration app)."""
    from apps.collaboration.broadcast import access_changed

    transaction.on_commit(lambda: access_changed(user_id=user_id, workspace_id=workspace_id))


def _send_invitation_email(invitation: Invitation) -> None:
    link = f"{settings.SITE_URL}/api/v1/invitations/"
    send_mail(
        subject=f"You are invited to {invitation.workspace.name} on Meridian",
        message=(
            f"{invitation.invited_by or 'Someone'} invited you to join the workspace "
            f"“{invitation.workspace.name}” as {invitation.role}.\n\nAccept: {link}\n"
            f"The invitation expires on {invitation.expires_at:%Y-%m-%d}."
        ),
        from_email=None,
        recipient_list=[invitation.email],
    )


@transaction.atomic
def invitation_create(*, actor: Actor, inviter: User, workspace: Workspace, email: str, role: str) -> Invitation:
    _require(actor, workspace, WorkspaceAction.MANAGE_MEMBERS)
    email = email.strip().lower()
    if role == Role.OWNER:
        raise ApplicationError("Invite as admin, then transfer ownership.", field="role")
    if not may_assign_role(actor, workspace.pk, current=None, new=role):
        raise PermissionDenied("Only owners can invite admins.")
    if Membership.objects.filter(workspace=workspace, user__email__iexact=email).exists():
        raise Conflict(f"{email} is already a member.", field="email")
    try:
        with transaction.atomic():
            invitation = Invitation.objects.create(workspace=workspace, email=email, role=role, invited_by=inviter)
    except IntegrityError:
        raise Conflict(f"{email} already has a pending invitation.", field="email") from None
    transaction.on_commit(lambda: _send_invitation_email(invitation))
    return invitation


def _pending_invitation_for(user: User, invitation_id: object) -> Invitation:
    invitation = (
        Invitation.objects.select_for_update()
        .select_related("workspace")
        .filter(pk=invitation_id, email__iexact=user.email)
        .first()
    )
    if invitation is None:
        raise NotFound()
    if invitation.status != Invitation.Status.PENDING:
        raise Conflict(f"This invitation is already {invitation.status}.")
    if invitation.is_expired:
        raise ApplicationError("This invitation has expired; ask for a new one.", field="invitation")
    return invitation


@transaction.atomic
def invitation_accept(*, user: User, invitation_id: object) -> Membership:
    """Join the workspace. Only the invited address can accept (404 for anyone else)."""
    invitation = _pending_invitation_for(user, invitation_id)
    membership, _created = Membership.objects.get_or_create(
        workspace=invitation.workspace, user=user, defaults={"role": invitation.role}
    )
    invitation.status = Invitation.Status.ACCEPTED
    invitation.responded_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["status", "responded_at", "accepted_by", "updated_at"])
    return membership


@transaction.atomic
def invitation_decline(*, user: User, invitation_id: object) -> Invitation:
    invitation = _pending_invitation_for(user, invitation_id)
    invitation.status = Invitation.Status.DECLINED
    invitation.responded_at = timezone.now()
    invitation.save(update_fields=["status", "responded_at", "updated_at"])
    return invitation


@transaction.atomic
def invitation_revoke(*, actor: Actor, invitation: Invitation) -> Invitation:
    _require(actor, invitation.workspace, WorkspaceAction.MANAGE_MEMBERS)
    if invitation.status != Invitation.Status.PENDING:
        raise Conflict(f"This invitation is already {invitation.status}.")
    invitation.status = Invitation.Status.REVOKED
    invitation.responded_at = timezone.now()
    invitation.save(update_fields=["status", "responded_at", "updated_at"])
    return invitation
