from __future__ import annotations

from django.apps import AppConfig


class LayersConfig(AppConfig):
    name = "apps.layers"
    label = "layers"
    default_auto_field = "django.db.models.BigAutoField"
