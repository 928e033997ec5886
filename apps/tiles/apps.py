from __future__ import annotations

from django.apps import AppConfig


class TilesConfig(AppConfig):
    name = "apps.tiles"
    label = "tiles"
    default_auto_field = "django.db.models.BigAutoField"
