from __future__ import annotations

from django.db import migrations

from apps.core.migration_sql import tenant_foreign_key


class Migration(migrations.Migration):
    dependencies = [("comments", "0001_initial"), ("maps", "0001_initial"), ("layers", "0001_initial")]

    operations = [
        tenant_foreign_key("comments_comment", "map_id", "maps_map"),
        tenant_foreign_key("comments_comment", "layer_id", "layers_layer"),
        tenant_foreign_key("comments_comment", "parent_id", "comments_comment"),
    ]
