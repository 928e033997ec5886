"""Web pages. The map editor and viewer come with the tiles work; until then the
dashboard lists your workspaces and maps and links into the browsable API."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.maps.selectors import actor_for, maps_visible_to
from apps.workspaces.selectors import workspaces_for


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return render(request, "home.html")
    actor = actor_for(request.user)
    maps = list(maps_visible_to(actor).order_by("-updated_at")[:500])
    workspaces = []
    for workspace in workspaces_for(actor):
        workspace.role = actor.role_in(workspace.pk)
        workspaces.append((workspace, [m for m in maps if m.workspace_id == workspace.pk]))
    shared = [m for m in maps if actor.role_in(m.workspace_id) is None]
    return render(request, "workspaces/dashboard.html", {"workspaces": workspaces, "shared": shared})
