from __future__ import annotations

from django.db import migrations

from apps.core.migration_sql import tenant_foreign_key


class Migration(migrations.Migration):
    dependencies = [("collaboration", "0001_initial"), ("maps", "0001_initial")]

    operations = [tenant_foreign_key("collaboration_mapevent", "map_id", "maps_map")]
