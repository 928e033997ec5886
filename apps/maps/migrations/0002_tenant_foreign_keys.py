from __future__ import annotations

from django.db import migrations

from apps.core.migration_sql import tenant_foreign_key


class Migration(migrations.Migration):
    dependencies = [("maps", "0001_initial"), ("layers", "0001_initial")]

    operations = [
        tenant_foreign_key("maps_maplayer", "map_id", "maps_map"),
        tenant_foreign_key("maps_maplayer", "layer_id", "layers_layer"),
        tenant_foreign_key("maps_mapcollaborator", "map_id", "maps_map"),
    ]
