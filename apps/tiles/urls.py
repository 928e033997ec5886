"""Vector tile routes, included under /tiles/ by config/urls.py."""

from __future__ import annotations

from django.urls import path

from apps.tiles import views

urlpatterns = [
    path("layers/<uuid:layer_id>/<int:z>/<int:x>/<int:y>.mvt", views.layer_tile, name="layer-tile"),
    path("layers/<uuid:layer_id>.json", views.layer_tilejson, name="layer-tilejson"),
]
