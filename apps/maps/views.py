"""Web pages for maps: the viewer for people with access, and the public read-only view by share link.

Both pages embed the map's settings and its layers' styles as JSON, so the browser's only
further requests are the basemap and each layer's TileJSON and tiles.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from apps.core.errors import NotFound
from apps.maps.models import Basemap, Map
from apps.maps.selectors import actor_for, map_for, map_layers_of, public_map_by_share_token

BASEMAP_STYLE_URL = "/basemap/style/openmaptiles.json"


def _viewer_config(map: Map, *, share_token: str | None) -> dict[str, Any]:
    """What static/js/viewer.js draws: the camera, the basemap, and the vector layers bottom first."""
    layers = [
        {
            "id": str(entry.layer.pk),
            "name": entry.layer.name,
            "geometry_type": entry.layer.geometry_type,
            "tilejson": reverse("layer-tilejson", args=[entry.layer.pk]),
            "style": entry.layer.style_config or {},
            "legend": entry.layer.legend_config or {},
            "visible": entry.is_visible,
            "opacity": entry.opacity,
        }
        for entry in map_layers_of(map).order_by("display_order")
        if entry.layer.source_type == "vector"
    ]
    return {
        "name": map.name,
        "center": [map.center.x, map.center.y],
        "zoom": map.zoom,
        "bearing": map.bearing,
        "pitch": map.pitch,
        "basemap_style": BASEMAP_STYLE_URL if map.basemap == Basemap.BRIGHT else None,
        "share_token": share_token,
        "layers": layers,
    }


def _viewer(request: HttpRequest, map: Map, *, share_token: str | None = None) -> HttpResponse:
    config = _viewer_config(map, share_token=share_token)
    return render(request, "maps/viewer.html", {"map": map, "config": config, "public": share_token is not None})


def map_viewer(request: HttpRequest, map_id: str) -> HttpResponse:
    """The map for anyone `apps/maps/permissions` lets see it; 404 for missing and forbidden alike."""
    try:
        map = map_for(actor_for(request.user), map_id)
    except NotFound:
        raise Http404 from None
    return _viewer(request, map)


def public_map_viewer(request: HttpRequest, share_token: str) -> HttpResponse:
    """A public map, read-only, by its share link; a rotated link is a 404."""
    try:
        map = public_map_by_share_token(share_token)
    except NotFound:
        raise Http404 from None
    return _viewer(request, map, share_token=share_token)
