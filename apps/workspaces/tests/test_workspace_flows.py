from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from apps.workspaces.models import Invitation, Membership, Role, Workspace
from conftest import client_for
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_creating_a_workspace_makes_its_creator_the_owner() -> None:
    user = UserFactory()
    response = client_for(user).post("/api/v1/workspaces/", {"name": "Field Survey"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["slug"] == "field-survey"
    assert response.json()["role"] == "owner"
    workspace = Workspace.objects.get(slug="field-survey")
    assert Membership.objects.get(workspace=workspace, user=user).role == Role.OWNER


def test_an_invited_person_accepts_and_becomes_a_member_with_the_invited_role(
    django_capture_on_commit_callbacks,
) -> None:
    admin = MembershipFactory(role=Role.ADMIN)
    workspace = admin.workspace
    with django_capture_on_commit_callbacks(execute=True):
        created = client_for(admin.user).post(
            f"/api/v1/workspaces/{workspace.slug}/invitations/",
            {"email": "New.Person@Example.test", "role": "editor"},
            format="json",
        )
    assert created.status_code == 201, created.json()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["new.person@example.test"]
    assert "/api/v1/invitations/" in mail.outbox[0].body

    invitee = UserFactory(email="new.person@example.test")
    client = client_for(invitee)
    pending = client.get("/api/v1/invitations/").json()["results"]
    assert [i["id"] for i in pending] == [created.json()["id"]]
    accepted = client.post(f"/api/v1/invitations/{created.json()['id']}/accept/")
    assert accepted.status_code == 200, accepted.json()
    assert Membership.objects.get(workspace=workspace, user=invitee).role == Role.EDITOR
    assert Invitation.objects.get(pk=created.json()["id"]).status == "accepted"
    again = client.post(f"/api/v1/invitations/{created.json()['id']}/accept/")
    assert again.status_code == 409


def test_only_the_invited_address_can_accept_an_invitation() -> None:
    admin = MembershipFactory(role=Role.ADMIN)
    invitation = Invitation.objects.create(workspace=admin.workspace, email="bob@example.test", invited_by=admin.user)
    intruder = UserFactory(email="mallory@example.test")
    response = client_for(intruder).post(f"/api/v1/invitations/{invitation.pk}/accept/")
    assert response.status_code == 404
    assert not Membership.objects.filter(workspace=admin.workspace, user=intruder).exists()


def test_declined_and_expired_invitations_cannot_be_accepted() -> None:
    admin = MembershipFactory(role=Role.ADMIN)
    bob = UserFactory(email="bob@example.test")
    declined = Invitation.objects.create(workspace=admin.workspace, email=bob.email)
    client = client_for(bob)
    assert client.post(f"/api/v1/invitations/{declined.pk}/decline/").status_code == 200
    assert client.post(f"/api/v1/invitations/{declined.pk}/accept/").status_code == 409
    expired = Invitation.objects.create(
        workspace=admin.workspace, email=bob.email, expires_at=timezone.now() - timedelta(minutes=1)
    )
    response = client.post(f"/api/v1/invitations/{expired.pk}/accept/")
    assert response.status_code == 400 and "expired" in response.json()["detail"]
    assert not Membership.objects.filter(workspace=admin.workspace, user=bob).exists()


def test_inviting_an_existing_member_or_twice_is_a_conflict_naming_the_email() -> None:
    admin = MembershipFactory(role=Role.ADMIN)
    member = MembershipFactory(workspace=admin.workspace)
    url = f"/api/v1/workspaces/{admin.workspace.slug}/invitations/"
    client = client_for(admin.user)
    assert client.post(url, {"email": member.user.email}, format="json").status_code == 409
    assert client.post(url, {"email": "x@example.test"}, format="json").status_code == 201
    second = client.post(url, {"email": "x@example.test"}, format="json")
    assert second.status_code == 409 and "email" in second.json()["errors"]


def test_the_last_owner_cannot_leave_or_be_demoted() -> None:
    owner = MembershipFactory(role=Role.OWNER)
    client = client_for(owner.user)
    url = f"/api/v1/workspaces/{owner.workspace.slug}/members/{owner.user_id}/"
    assert client.patch(url, {"role": "admin"}, format="json").status_code == 409
    assert client.delete(url).status_code == 409
    assert Membership.objects.get(pk=owner.pk).role == Role.OWNER


def test_a_member_may_leave_a_workspace() -> None:
    viewer = MembershipFactory(role=Role.VIEWER)
    response = client_for(viewer.user).delete(f"/api/v1/workspaces/{viewer.workspace.slug}/members/{viewer.user_id}/")
    assert response.status_code == 204
    assert not Membership.objects.filter(pk=viewer.pk).exists()


def test_revoked_invitations_stop_working() -> None:
    admin = MembershipFactory(role=Role.ADMIN)
    bob = UserFactory(email="bob@example.test")
    invitation = Invitation.objects.create(workspace=admin.workspace, email=bob.email)
    revoke = client_for(admin.user).delete(f"/api/v1/workspaces/{admin.workspace.slug}/invitations/{invitation.pk}/")
    assert revoke.status_code == 204
    assert client_for(bob).post(f"/api/v1/invitations/{invitation.pk}/accept/").status_code == 409
