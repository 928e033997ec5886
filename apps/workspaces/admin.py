from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html_join

from apps.workspaces.admin_base import MeridianModelAdmin, MeridianTabularInline, WorkspaceListFilter
from apps.workspaces.models import Invitation, Membership, Workspace

# The tenant-owned lists a support engineer jumps to from a workspace, filtered to it.
TENANT_CHANGELISTS = (
    ("maps", "maps_map"),
    ("layers", "layers_layer"),
    ("comments", "comments_comment"),
    ("jobs", "jobs_job"),
    ("map events", "collaboration_mapevent"),
)


class MembershipInline(MeridianTabularInline):
    model = Membership
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("user",)


class InvitationInline(MeridianTabularInline):
    model = Invitation
    fields = ("email", "role", "status", "invited_by", "expires_at", "responded_at", "created_at")
    readonly_fields = ("status", "invited_by", "responded_at", "created_at")
    show_change_link = True


@admin.register(Workspace)
class WorkspaceAdmin(MeridianModelAdmin):
    list_display = ("name", "slug", "member_count", "created_by", "created_at")
    list_select_related = ("created_by",)
    list_filter = ("created_at",)
    search_fields = ("name", "slug", "=id")
    prepopulated_fields = {"slug": ("name",)}
    fieldsets = ((None, {"fields": ("name", "slug", "description", "tenant_links")}),)
    readonly_fields = ("tenant_links",)
    inlines = (MembershipInline, InvitationInline)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Workspace]:
        return super().get_queryset(request).annotate(member_count=Count("memberships", distinct=True))

    @admin.display(description="members", ordering="member_count")
    def member_count(self, workspace: Workspace) -> int:
        return workspace.member_count  # type: ignore[attr-defined]

    @admin.display(description="contents")
    def tenant_links(self, workspace: Workspace) -> str:
        if workspace.pk is None or workspace._state.adding:
            return "-"
        links = (
            (reverse(f"admin:{changelist}_changelist") + f"?workspace__id__exact={workspace.pk}", label)
            for label, changelist in TENANT_CHANGELISTS
        )
        return format_html_join(" · ", '<a href="{}">{}</a>', links)


@admin.register(Membership)
class MembershipAdmin(MeridianModelAdmin):
    list_display = ("user", "workspace", "role", "created_at")
    list_select_related = ("user", "workspace")
    list_filter = ("role", ("workspace", WorkspaceListFilter), "created_at")
    search_fields = ("user__email", "user__name", "workspace__name", "workspace__slug")
    autocomplete_fields = ("workspace", "user")
    fieldsets = ((None, {"fields": ("workspace", "user", "role")}),)


@admin.register(Invitation)
class InvitationAdmin(MeridianModelAdmin):
    list_display = ("email", "workspace", "role", "status", "invited_by", "expires_at", "created_at")
    list_select_related = ("workspace", "invited_by")
    list_filter = ("status", "role", ("workspace", WorkspaceListFilter), "expires_at", "created_at")
    search_fields = ("email", "workspace__name", "workspace__slug", "invited_by__email")
    autocomplete_fields = ("workspace",)
    fieldsets = ((None, {"fields": ("workspace", "email", "role", "status", "expires_at", "accepted_by")}),)
    actions = ("revoke",)

    def get_readonly_fields(self, request: HttpRequest, obj: Invitation | None = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "workspace"] if obj is not None else fields

    def save_model(self, request: HttpRequest, obj: Invitation, form: forms.ModelForm, change: bool) -> None:
        if obj.status != Invitation.Status.PENDING and obj.responded_at is None:
            obj.responded_at = timezone.now()  # a closed invitation records when it closed
        super().save_model(request, obj, form, change)

    @admin.action(description="Revoke selected pending invitations")
    def revoke(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> None:
        now = timezone.now()
        revoked = queryset.filter(status=Invitation.Status.PENDING).update(
            status=Invitation.Status.REVOKED, responded_at=now, updated_at=now
        )
        self.message_user(request, f"{revoked} invitation(s) revoked.")
