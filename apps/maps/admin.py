from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from apps.maps.models import Map, MapCollaborator, MapLayer, new_share_token
from apps.workspaces.admin_base import (
    WorkspaceListFilter,
    WorkspaceOwnedAdmin,
    WorkspaceOwnedGISAdmin,
    WorkspaceOwnedTabularInline,
)


class MapLayerInline(WorkspaceOwnedTabularInline):
    model = MapLayer
    fields = ("layer", "display_order", "is_visible", "opacity")
    autocomplete_fields = ("layer",)
    ordering = ("display_order",)


class MapCollaboratorInline(WorkspaceOwnedTabularInline):
    model = MapCollaborator
    fields = ("email", "user", "permission", "invited_by", "invited_at", "accepted_at")
    readonly_fields = ("invited_by", "invited_at", "accepted_at")
    autocomplete_fields = ("user",)


@admin.register(Map)
class MapAdmin(WorkspaceOwnedGISAdmin):
    choose_workspace_on_add = True
    list_display = ("name", "workspace", "visibility", "basemap", "created_by", "updated_at")
    list_select_related = ("workspace", "created_by")
    list_filter = ("visibility", "basemap", ("workspace", WorkspaceListFilter), "created_at", "updated_at")
    search_fields = ("name", "workspace__name", "workspace__slug", "created_by__email", "=share_token", "=id")
    search_help_text = "Name, workspace, creator's email, an exact share token or map id."
    fieldsets = (
        (None, {"fields": ("name", "description", "visibility")}),
        ("View", {"fields": ("center", ("zoom", "bearing", "pitch"), "basemap")}),
        ("Sharing", {"fields": ("share_token", "share_link")}),
    )
    readonly_fields = ("share_link",)
    inlines = (MapLayerInline, MapCollaboratorInline)
    actions = ("rotate_share_token",)

    def get_fieldsets(self, request: HttpRequest, obj: Map | None = None) -> list[tuple[Any, dict[str, Any]]]:
        fieldsets = super().get_fieldsets(request, obj)
        return fieldsets if obj is not None else [fs for fs in fieldsets if fs[0] != "Sharing"]

    @admin.display(description="public link")
    def share_link(self, map: Map) -> str:
        if not map.is_public:
            return "- (only public maps open by link)"
        url = f"{settings.SITE_URL}/m/{map.share_token}"
        return format_html('<a href="{}">{}</a>', url, url)

    @admin.action(description="Rotate the share token (old links stop working)")
    def rotate_share_token(self, request: HttpRequest, queryset: QuerySet[Map]) -> None:
        maps = list(queryset)
        for map in maps:
            map.share_token = new_share_token()
            map.save(update_fields=["share_token", "updated_at"])
        self.message_user(request, f"Rotated the share token of {len(maps)} map(s).")


@admin.register(MapLayer)
class MapLayerAdmin(WorkspaceOwnedAdmin):
    list_display = ("__str__", "map", "layer", "display_order", "is_visible", "opacity", "workspace")
    list_display_links = ("__str__",)
    list_select_related = ("map", "layer", "workspace")
    list_filter = ("is_visible", ("workspace", WorkspaceListFilter))
    search_fields = ("map__name", "layer__name", "=map__id", "=layer__id")
    autocomplete_fields = ("map", "layer")
    fieldsets = ((None, {"fields": ("map", "layer", "display_order", "is_visible", "opacity")}),)


@admin.register(MapCollaborator)
class MapCollaboratorAdmin(WorkspaceOwnedAdmin):
    list_display = ("email", "map", "user", "permission", "accepted_at", "invited_at", "workspace")
    list_select_related = ("map", "user", "workspace")
    list_filter = ("permission", ("accepted_at", admin.EmptyFieldListFilter), ("workspace", WorkspaceListFilter))
    search_fields = ("email", "user__email", "map__name", "=map__id")
    autocomplete_fields = ("map", "user")
    fieldsets = ((None, {"fields": ("map", "email", "user", "permission")}),)
