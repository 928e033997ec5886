"""Tile and TileJSON endpoints. Plain Django views: a tile is bytes, not a resource."""

from __future__ import annotations

import gzip
from urllib.parse import urlencode
from uuid import UUID

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from apps.accounts.authentication import user_for_token_key
from apps.core.errors import ApplicationError
from apps.layers.filters import RESERVED_PARAMS, parse_filters
from apps.layers.selectors import LayerAccess, layer_access, layer_access_lean
from apps.maps.models import Visibility
from apps.maps.permissions import Actor
from apps.maps.selectors import actor_for
from apps.tiles.cache import cached_tile, etag_for, store_tile, tile_key
from apps.tiles.headers import MVT_CONTENT_TYPE, tile_cache_control, tile_headers
from apps.tiles.mvt import MAX_ZOOM, TileRequest, render_tile, tile_in_range, tilejson_fields


def _error(exc: ApplicationError) -> JsonResponse:
    body = {"code": exc.code, "detail": f"{exc.field}: {exc.message}" if exc.field else exc.message}
    return JsonResponse(body, status=exc.status_code)


def _actor(request: HttpRequest) -> Actor:
    """Session cookie (the viewer page), API token (scripts) or a map's share token."""
    user = request.user
    header = request.headers.get("Authorization", "").split()
    if len(header) == 2 and header[0].lower() in ("token", "bearer"):
        found = user_for_token_key(header[1])
        if found is not None:
            user = found[0]
    return actor_for(user, share_token=request.GET.get("share_token"))


def _is_public(access: LayerAccess) -> bool:
    return any(map.visibility == Visibility.PUBLIC for map in access.maps)


def _cache_control(access: LayerAccess, request: HttpRequest) -> str:
    return tile_cache_control(
        is_public=_is_public(access), data_version=access.layer.data_version, requested_version=request.GET.get("v")
    )


def _tile_response(gzipped: bytes, request: HttpRequest) -> HttpResponse:
    if not gzipped:
        return HttpResponse(status=204)
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        response = HttpResponse(gzipped, content_type=MVT_CONTENT_TYPE)
        response["Content-Encoding"] = "gzip"
    else:
        response = HttpResponse(gzip.decompress(gzipped), content_type=MVT_CONTENT_TYPE)
    return response


@require_GET
def layer_tile(request: HttpRequest, layer_id: UUID, z: int, x: int, y: int) -> HttpResponse:
    """One MVT tile of a vector layer, filtered by attribute query parameters."""
    if not tile_in_range(z, x, y):
        return JsonResponse({"code": "invalid", "detail": f"No tile {z}/{x}/{y} (zoom 0-{MAX_ZOOM})."}, status=400)
    try:
        access = layer_access_lean(_actor(request), layer_id)  # 404 before anything else
        conditions = parse_filters(request.GET, access.layer.attribute_schema)
    except ApplicationError as exc:
        return _error(exc)
    key = tile_key(access.layer, conditions, z, x, y)
    etag = etag_for(key)
    headers = tile_headers(etag=etag, cache_control=_cache_control(access, request))
    if etag in request.headers.get("If-None-Match", ""):
        return HttpResponse(status=304, headers=headers)
    gzipped = cached_tile(key)
    if gzipped is None:
        tile, _thinned = render_tile(TileRequest(access.layer, z, x, y, conditions))
        gzipped = gzip.compress(tile, compresslevel=6) if tile else b""
        store_tile(key, gzipped)
    response = _tile_response(gzipped, request)
    for name, value in headers.items():
        response[name] = value
    return response


@require_GET
def layer_tilejson(request: HttpRequest, layer_id: UUID) -> JsonResponse:
    """TileJSON 3.0 for a layer; its tile URL carries the data version and any filters."""
    try:
        access = layer_access(_actor(request), layer_id)
        conditions = parse_filters(request.GET, access.layer.attribute_schema)
    except ApplicationError as exc:
        return _error(exc)
    layer = access.layer
    query = {name: value for name, value in request.GET.items() if name not in RESERVED_PARAMS - {"share_token"}}
    query["v"] = str(layer.data_version)
    template = request.build_absolute_uri(f"/tiles/layers/{layer.pk}/") + "{z}/{x}/{y}.mvt?" + urlencode(query)
    extent = layer.extent.extent if layer.extent else (-180, -85.0511, 180, 85.0511)
    body = {
        "tilejson": "3.0.0",
        "name": layer.name,
        "tiles": [template],
        "minzoom": 0,
        "maxzoom": MAX_ZOOM,
        "bounds": list(extent),
        "vector_layers": [{"id": "features", "fields": tilejson_fields(layer), "minzoom": 0, "maxzoom": MAX_ZOOM}],
        "filters": [f"{c.attribute}__{c.operator}" for c in conditions],
    }
    response = JsonResponse(body)
    response["Cache-Control"] = "private, max-age=0, must-revalidate"
    return response
