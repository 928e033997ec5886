"""Map web pages, included at the site root by config/urls.py."""

from __future__ import annotations

from django.urls import path

from apps.maps import views

urlpatterns = [
    path("maps/<uuid:map_id>/", views.map_viewer, name="map-viewer"),
    path("m/<str:share_token>", views.public_map_viewer, name="public-map-viewer"),
]
