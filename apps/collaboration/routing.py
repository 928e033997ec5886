from __future__ import annotations

from django.urls import path

from apps.collaboration.consumers import MapConsumer
from apps.collaboration.user_consumer import UserConsumer

websocket_urlpatterns = [
    path("ws/maps/<uuid:map_id>/", MapConsumer.as_asgi()),
    path("ws/me/", UserConsumer.as_asgi()),
]
