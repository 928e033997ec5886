from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone
from django.utils.text import Truncator

from apps.comments.models import Comment
from apps.workspaces.admin_base import WorkspaceListFilter, WorkspaceOwnedGISAdmin


@admin.register(Comment)
class CommentAdmin(WorkspaceOwnedGISAdmin):
    list_display = ("excerpt", "author", "map", "layer", "is_resolved", "created_at", "workspace")
    list_select_related = ("author", "map", "layer", "workspace")
    list_filter = ("is_resolved", ("workspace", WorkspaceListFilter), "created_at")
    search_fields = ("body", "author__email", "map__name", "layer__name", "=id")
    search_help_text = "Text, author's email, map or layer name, or an exact comment id."
    autocomplete_fields = ("map", "layer", "parent")
    raw_id_fields = ("feature",)  # a layer may hold millions of features
    fieldsets = (
        (None, {"fields": ("body", "is_resolved")}),
        ("On", {"fields": ("map", "layer", "feature", "parent")}),
        ("Pinned at", {"fields": ("anchor", "anchor_zoom")}),
    )

    @admin.display(description="comment", ordering="created_at")
    def excerpt(self, comment: Comment) -> str:
        return Truncator(comment.body).chars(80)

    def save_model(self, request: HttpRequest, obj: Comment, form: forms.ModelForm, change: bool) -> None:
        if "is_resolved" in form.changed_data:  # the check constraint wants the time with the flag
            obj.resolved_at = timezone.now() if obj.is_resolved else None
            obj.resolved_by = request.user if obj.is_resolved else None
        super().save_model(request, obj, form, change)
