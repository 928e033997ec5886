from __future__ import annotations

from rest_framework import serializers

from apps.accounts.api.serializers import UserSerializer
from apps.core.serializers import StrictInputSerializer
from apps.workspaces.models import Invitation, Membership, Role, Workspace


class WorkspaceSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Workspace
        fields = ["id", "slug", "name", "description", "role", "created_at"]
        read_only_fields = fields

    def get_role(self, workspace: Workspace) -> str | None:
        actor = self.context.get("actor")
        return actor.role_in(workspace.pk) if actor else None


class WorkspaceInputSerializer(StrictInputSerializer):
    name = serializers.CharField(max_length=120)
    slug = serializers.SlugField(max_length=60, required=False)
    description = serializers.CharField(allow_blank=True, required=False)


class MembershipSerializer(serializers.ModelSerializer):
    user = UserSerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ["user", "role", "created_at"]
        read_only_fields = fields


class MembershipInputSerializer(StrictInputSerializer):
    role = serializers.ChoiceField(choices=Role.choices)


class InvitationSerializer(serializers.ModelSerializer):
    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    invited_by = UserSerializer(read_only=True)

    class Meta:
        model = Invitation
        fields = ["id", "workspace", "email", "role", "status", "invited_by", "created_at", "expires_at"]
        read_only_fields = fields


class InvitationInputSerializer(StrictInputSerializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=[c for c in Role.choices if c[0] != Role.OWNER], default=Role.VIEWER)
