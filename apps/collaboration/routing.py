from __future__ import annotations

from django.urls import path

from apps.collaboration.consumers import MapConsumer

websocket_urlpatterns = [
    path("ws/maps/<uuid:map_id>/", MapConsumer.as_asgi()),
]
