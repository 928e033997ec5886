from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.collaboration.models import MapEvent
from apps.workspaces.admin_base import EstimatedCountPaginator, WorkspaceListFilter, WorkspaceOwnedAdmin, json_block


@admin.register(MapEvent)
class MapEventAdmin(WorkspaceOwnedAdmin):
    """The append-only log behind live sync, replay and undo: readable, never written here."""

    list_display = ("map", "seq", "type", "actor", "created_at", "workspace")
    list_select_related = ("map", "actor", "workspace")
    list_filter = ("created_at", ("workspace", WorkspaceListFilter))
    search_fields = ("=type", "map__name", "=map__id", "actor__email")
    search_help_text = "An exact event type (feature.updated), a map name or id, the actor's email."
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fieldsets = ((None, {"fields": ("map", "seq", "type", "actor", "payload_json", "created_at")}),)
    readonly_fields = ("map", "seq", "type", "actor", "payload_json", "created_at")

    @admin.display(description="payload")
    def payload_json(self, event: MapEvent) -> str:
        return json_block(event.payload)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
